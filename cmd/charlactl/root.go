package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/charla/charla/shared/buildinfo"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
)

// defaultRPC is where the one-process binary (make run) listens.
const defaultRPC = "http://127.0.0.1:8090"

// app is what every command works with: the service clients and how to print.
type app struct {
	getenv         func(string) string
	stdout, stderr io.Writer

	rpcURL  string
	json    bool
	timeout time.Duration

	token   string
	urls    peers.URLs
	clients *peers.Clients
}

// usageError is a mistake on the command line (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// isUsage tells a command-line mistake from a failed command.
func isUsage(err error) bool {
	var u usageError
	msg := err.Error()
	return errors.As(err, &u) || strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "required flag")
}

func newRoot(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "charlactl",
		Short: "Administer Charla through its internal RPC",
		Long: `charlactl administers Charla through the internal RPC of its services.

It sends INTERNAL_API_TOKEN from the environment on every call. --rpc (or CHARLA_RPC_URL)
is the services' RPC listener: http://127.0.0.1:8090 for make run. Deployed apart,
CHAT_URL, PROFILE_URL, NOTIFY_URL and PRESENCE_URL point at each service.
A USER is a user id or a userName.`,
		Version:           buildinfo.Read().String(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(*cobra.Command, []string) error { return a.connect() },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetVersionTemplate("charlactl {{.Version}}\n")
	f := root.PersistentFlags()
	f.StringVar(&a.rpcURL, "rpc", "", "base URL of the services' RPC listener (env CHARLA_RPC_URL; default "+defaultRPC+")")
	f.BoolVar(&a.json, "json", false, "print JSON (the RPC's response message) instead of text")
	f.DurationVar(&a.timeout, "timeout", 10*time.Second, "how long to wait for each call")
	root.AddCommand(a.usersCmd(), a.sessionsCmd(), a.contactsCmd(), a.notificationsCmd(), a.presenceCmd(), a.countriesCmd())
	return root
}

// connect builds the clients from the flags and the environment.
func (a *app) connect() error {
	base := a.rpcURL
	if base == "" {
		base = a.getenv("CHARLA_RPC_URL")
	}
	if base == "" {
		base = defaultRPC
	}
	if err := checkURL("--rpc / CHARLA_RPC_URL", base); err != nil {
		return err
	}
	a.urls = peers.Same(base)
	for _, s := range []struct {
		env string
		url *string
	}{{"CHAT_URL", &a.urls.Chat}, {"PROFILE_URL", &a.urls.Profile}, {"NOTIFY_URL", &a.urls.Notify}, {"PRESENCE_URL", &a.urls.Presence}} {
		if v := a.getenv(s.env); v != "" {
			if err := checkURL(s.env, v); err != nil {
				return err
			}
			*s.url = v
		}
	}
	if a.timeout <= 0 {
		return usagef("--timeout must be positive, got %v", a.timeout)
	}
	a.token = a.getenv("INTERNAL_API_TOKEN")
	// HTTP/1.1 for http:// (Connect's unary calls need no more) and HTTP/2 over TLS, so
	// charlactl also works through an ingress.
	a.clients = peers.New(a.urls, a.token, &http.Client{Timeout: a.timeout})
	return nil
}

// checkURL accepts host:port, an http(s) URL, or a comma-separated list of them (the
// replicas of a service).
func checkURL(name, v string) error {
	if err := rpc.CheckTarget(v); err != nil {
		return usagef("%s=%q: %w", name, v, err)
	}
	return nil
}
