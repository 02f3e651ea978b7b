package eventlog_test

import (
	"testing"

	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/eventlog/logtest"
)

func TestMemory(t *testing.T) {
	logtest.Run(t, func(t *testing.T, opt eventlog.Options) func() eventlog.Log {
		shared := eventlog.NewMemory(opt)
		return func() eventlog.Log { return shared }
	}, true)
}
