// Command notifysvc runs the notification service as its own process. Configuration: see
// the README.
package main

import (
	"os"

	"github.com/charla/charla/notifysvc"
	"github.com/charla/charla/shared/svc"
)

func main() {
	os.Exit(svc.Main("notifysvc", "127.0.0.1:8093", notifysvc.Configure))
}
