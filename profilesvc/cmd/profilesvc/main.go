// Command profilesvc runs the profile service as its own process. Configuration: see the README.
package main

import (
	"os"

	"github.com/charla/charla/profilesvc"
	"github.com/charla/charla/shared/svc"
)

func main() {
	os.Exit(svc.Main("profilesvc", "127.0.0.1:8092", profilesvc.Configure))
}
