// Command presencesvc runs the presence service as its own process. Configuration: see the README.
package main

import (
	"context"
	"os"

	"github.com/charla/charla/presencesvc"
	"github.com/charla/charla/shared/svc"
)

func main() {
	os.Exit(svc.Main("presencesvc", "127.0.0.1:8094", func(ctx context.Context, deps svc.Deps) (svc.Service, error) {
		return presencesvc.New(ctx, deps)
	}))
}
