package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// protocolDocs are where the wire protocol is documented, relative to the repository root
// (make run's working directory); the banner names the first that exists.
var protocolDocs = []string{"docs/protocol.md", "../shared/PROTOCOL.md"}

// banner is what make run prints once everything is up: on stdout, apart from the logs
// (stderr), so `make run 2>/dev/null` leaves only it.
type banner struct {
	edgeAddr, rpcAddr string
	tokens            []demoToken
	demo              bool
}

func (b banner) print(w io.Writer) {
	var s strings.Builder
	line := strings.Repeat("─", 72)
	fmt.Fprintf(&s, "\n%s\n", line)
	fmt.Fprintf(&s, " Charla is running\n\n")
	fmt.Fprintf(&s, "   WebSocket  ws://%s/ws?token=TOKEN\n", b.edgeAddr)
	fmt.Fprintf(&s, "   Health     http://%s/ready   Metrics http://%s/metrics\n", b.edgeAddr, b.edgeAddr)
	fmt.Fprintf(&s, "   RPC        http://%s  (charlactl --rpc http://%s ...)\n", b.rpcAddr, b.rpcAddr)
	if len(b.tokens) > 0 {
		fmt.Fprintf(&s, "\n Demo users (alice–bob and alice–carol are contacts):\n\n")
		for _, t := range b.tokens {
			fmt.Fprintf(&s, "   %-6s id %-3d %s\n", t.name, t.id, t.token)
		}
		fmt.Fprintf(&s, "\n Try it:\n\n   websocat 'ws://%s/ws?token=%s'\n   {\"type\":\"GET_CHAT_LIST\",\"pid\":\"1\"}\n", b.edgeAddr, b.tokens[0].token)
	} else if !b.demo {
		fmt.Fprintf(&s, "\n No demo data (DEMO=false): create users and tokens with charlactl.\n")
	}
	for _, p := range protocolDocs {
		if _, err := os.Stat(p); err == nil {
			fmt.Fprintf(&s, "\n Protocol: %s\n", p)
			break
		}
	}
	fmt.Fprintf(&s, " Logs follow on stderr. Ctrl-C stops.\n%s\n\n", line)
	_, _ = io.WriteString(w, s.String())
}
