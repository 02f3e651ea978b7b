// Command memclient holds many idle WebSocket connections open for the hub's
// memory benchmark. It runs in its own process because the client ends would
// otherwise double the benchmark's file descriptors and blur its memory
// figures.
//
// It dials -n connections to -url (adding ?user=<i>), reads from each (so pings
// are answered), prints "ready <n>" on stdout once all are open, and exits,
// dropping every connection, when its stdin is closed.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
)

func main() {
	url := flag.String("url", "", "ws:// URL of the hub")
	n := flag.Int("n", 1000, "connections to hold")
	concurrency := flag.Int("c", 32, "concurrent handshakes")
	flag.Parse()
	if *url == "" {
		log.Fatal("memclient: -url is required")
	}

	// Small buffers: this process's memory is not what is measured, but it
	// shares the machine.
	d := websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256}
	conns := make([]*websocket.Conn, *n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *concurrency)
	for range *concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				c, _, err := d.Dial(*url+"?user="+strconv.Itoa(i), nil)
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				conns[i] = c
				go func() {
					for {
						if _, _, err := c.NextReader(); err != nil {
							return
						}
					}
				}()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		log.Fatalf("memclient: %v", err)
	default:
	}
	fmt.Printf("ready %d\n", *n)
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
}
