// Command notifysvc runs the notify service as its own process. Configuration: see the README.
package main

import (
	"context"
	"os"

	"github.com/charla/charla/notifysvc"
	"github.com/charla/charla/shared/svc"
)

func main() {
	os.Exit(svc.Main("notifysvc", "127.0.0.1:8093", func(ctx context.Context, deps svc.Deps) (svc.Service, error) {
		return notifysvc.New(ctx, deps)
	}))
}
