// Command chatsvc runs the chat service as its own process. Configuration: see the README.
package main

import (
	"os"

	"github.com/charla/charla/chatsvc"
	"github.com/charla/charla/shared/svc"
)

func main() {
	os.Exit(svc.Main("chatsvc", "127.0.0.1:8091", chatsvc.Configure))
}
