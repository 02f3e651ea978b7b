// Command charlactl is the operators' command line for Charla: it creates and lists users,
// issues and revokes session tokens, adds and removes contacts, sends notifications and
// reads presence and the country list, through the same internal RPC the edge uses.
//
//	export INTERNAL_API_TOKEN=...              # the token the services were started with
//	export CHARLA_RPC_URL=http://127.0.0.1:8090 # or --rpc; the one-process RPC_ADDR by default
//	charlactl users create alice --first-name Alice --last-name García --email alice@example.com
//	TOKEN=$(charlactl sessions create alice)
//	charlactl users list --json
//
// Deployed apart, CHAT_URL, PROFILE_URL, NOTIFY_URL and PRESENCE_URL (as the processes
// themselves take them) point at each service; CHARLA_RPC_URL is the default for all four.
// Users are named by id or by userName wherever a command takes one.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed; the message says why and what to change
	exitUsage = 2 // the command line is wrong
)

// run executes one command line and returns the exit code; getenv reads the environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	root := newRoot(getenv, stdout, stderr)
	if len(args) == 1 && args[0] == "-version" { // as every Charla binary takes it
		args = []string{"--version"}
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if isUsage(err) {
		printf(stderr, "charlactl: %v\n", err)
		if cmd != nil {
			printf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return exitUsage
	}
	printf(stderr, "charlactl: %v\n", err)
	return exitError
}
