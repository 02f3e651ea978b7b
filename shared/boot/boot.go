// Package boot is the start every Charla process shares: cmd/charla, edge/cmd/edge and the
// four service binaries (through shared/svc.Main). Settings come from .env, the
// environment and flags (package config, with -help and -version); LOG_FORMAT and
// LOG_LEVEL make the logger; telemetry follows the standard OTEL_* variables; SIGINT and
// SIGTERM stop the process. Doing it in one place makes a setting behave the same in every
// binary, and the settings that more than one binary declares (INTERNAL_API_TOKEN, the
// service addresses) are declared here once.
//
// A process builds one Process, declares its own settings on Process.Config, calls Start,
// and defers Close. A Process is used by one goroutine.
package boot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/charla/charla/shared/config"
	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/rpc"
	"github.com/charla/charla/shared/telemetry"
)

// Exit codes of a process that stops before serving.
const (
	// ExitOK follows -help and -version.
	ExitOK = 0
	// ExitFailed follows a failure while serving.
	ExitFailed = 1
	// ExitConfig follows a bad setting: the process was told something it cannot do.
	ExitConfig = 2
)

// telemetryShutdown bounds the export of the last spans at Close.
const telemetryShutdown = 5 * time.Second

// Process is one Charla process being started.
type Process struct {
	// Name is the program's name: in -help, in messages, as the logger's component and as
	// telemetry's default service.name.
	Name string
	// Config is where the process declares its settings before Start.
	Config *config.Loader
	// Root is the root logger, with the OS process id under process_id (a log line's
	// "pid" is a client's request id, docs/protocol.md §3.2); set by Start.
	Root *slog.Logger
	// Log is Root with the component Name; set by Start.
	Log *slog.Logger
	// Telemetry traces and measures the process; set by Start.
	Telemetry *telemetry.Telemetry

	stderr    io.Writer
	logFormat *string
	logLevel  *string
}

// New returns a Process for the program called name, writing its messages and logs to
// stderr.
func New(name string, stderr io.Writer) *Process {
	return &Process{Name: name, Config: config.New(name), stderr: stderr}
}

// Start reads the settings (.env, the environment, then args: the command line without
// the program's name), builds the logger and sets up telemetry. When ok is false the
// process must end at once with code: ExitOK after -help or -version, ExitConfig for a bad
// setting (the message, naming the variable, is on stderr) or telemetry configuration.
func (p *Process) Start(ctx context.Context, args []string) (code int, ok bool) {
	// Declared last, so that -help lists the process's own settings first.
	p.logFormat = p.Config.String("LOG_FORMAT", "text", "json or text", config.OneOf("json", "text"))
	p.logLevel = p.Config.String("LOG_LEVEL", "info", "debug, info, warn or error", config.OneOf("debug", "info", "warn", "error"))
	if err := p.Config.Parse(args); err != nil {
		if config.Exit(err) {
			return ExitOK, false
		}
		fmt.Fprintf(p.stderr, "%s: configuration: %v\n", p.Name, err)
		return ExitConfig, false
	}
	root, err := logging.New(p.stderr, logging.Options{Format: *p.logFormat, Level: *p.logLevel})
	if err != nil {
		fmt.Fprintf(p.stderr, "%s: configuration: %v\n", p.Name, err)
		return ExitConfig, false
	}
	p.Root = root.With("process_id", os.Getpid())
	p.Log = logging.Component(p.Root, p.Name)
	tel, err := telemetry.Setup(ctx, p.Name)
	if err != nil {
		p.Log.Error("refusing to start", "err", fmt.Errorf("telemetry: %w", err))
		return ExitConfig, false
	}
	p.Telemetry = tel
	p.Log.Info("telemetry", "tracing", tel.TracingEnabled(), "service_name", tel.ServiceName())
	return 0, true
}

// Close exports what telemetry still holds, within a few seconds. It does nothing when
// Start did not set telemetry up.
func (p *Process) Close() {
	if p.Telemetry == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), telemetryShutdown)
	defer cancel()
	if err := p.Telemetry.Shutdown(ctx); err != nil {
		p.Log.Warn("telemetry shutdown", "err", err)
	}
}

// Signals returns a context that ends at the first SIGINT or SIGTERM. Call stop once the
// process starts draining: the default handling is back, so a second Ctrl-C ends the
// process at once instead of waiting for the drain.
func Signals() (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Token declares INTERNAL_API_TOKEN, the bearer token of every internal RPC: the
// services require it, their clients send it.
func Token(cfg *config.Loader) *string {
	return cfg.String("INTERNAL_API_TOKEN", "", "bearer token of every internal RPC, required by the services and sent by their clients (empty: none, and RPC listeners bind only to loopback)", nil)
}

// PeerURLs declares where each service listens, for a process that runs apart from them
// (CHAT_URL, PROFILE_URL, NOTIFY_URL, PRESENCE_URL: one address or a list of replicas,
// each checked by rpc.CheckTarget). Call the result after Start.
func PeerURLs(cfg *config.Loader) func() peers.URLs {
	chat := cfg.String("CHAT_URL", "127.0.0.1:8091", "chat service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	profile := cfg.String("PROFILE_URL", "127.0.0.1:8092", "profile service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	notify := cfg.String("NOTIFY_URL", "127.0.0.1:8093", "notification service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	presence := cfg.String("PRESENCE_URL", "127.0.0.1:8094", "presence service address: host:port, http(s)://host:port, or a comma-separated list of replicas", rpc.CheckTarget)
	return func() peers.URLs {
		return peers.URLs{Chat: *chat, Profile: *profile, Notify: *notify, Presence: *presence}
	}
}
