// Command presencesvc runs the presence service as its own process. Configuration: see the README.
package main

import (
	"os"

	"github.com/charla/charla/presencesvc"
	"github.com/charla/charla/shared/svc"
)

func main() {
	os.Exit(svc.Main("presencesvc", "127.0.0.1:8094", presencesvc.Configure))
}
