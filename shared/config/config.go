// Package config loads a process's settings from, in increasing priority, an optional .env
// file (github.com/joho/godotenv; it never overrides the real environment), environment
// variables and command-line flags. Every setting has an environment name (EDGE_ADDR) and a
// flag named after it (-edge-addr). Values are validated as they are parsed, and the first
// bad one stops the process with a message naming the variable and what it expected.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/charla/charla/shared/buildinfo"
)

// Loader collects settings; declare them, then call Parse once.
type Loader struct {
	fs       *flag.FlagSet
	settings []*setting
	version  *bool
	out      io.Writer // where -version prints; os.Stdout
}

type setting struct {
	env   string
	def   string
	usage string
	raw   string
	set   func(string) error
}

// New returns a Loader for the program called name.
func New(name string) *Loader {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := &Loader{fs: fs, out: os.Stdout}
	l.version = fs.Bool("version", false, "print the version and exit")
	return l
}

// FlagName is the flag that sets environment variable env: EDGE_ADDR → edge-addr.
func FlagName(env string) string {
	return strings.ToLower(strings.ReplaceAll(env, "_", "-"))
}

func (l *Loader) add(env, def, usage string, set func(string) error) {
	s := &setting{env: env, def: def, usage: usage, raw: def, set: set}
	l.settings = append(l.settings, s)
	l.fs.Func(FlagName(env), usage+" (env "+env+")", func(v string) error {
		s.raw = v
		return nil
	})
}

// String declares a string setting. validate may be nil; it returns what was expected.
func (l *Loader) String(env, def, usage string, validate func(string) error) *string {
	p := new(string)
	l.add(env, def, usage, func(v string) error {
		if validate != nil {
			if err := validate(v); err != nil {
				return err
			}
		}
		*p = v
		return nil
	})
	return p
}

// Duration declares a positive duration setting such as "15s".
func (l *Loader) Duration(env string, def time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	l.add(env, def.String(), usage, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("expected a positive duration such as 15s or 500ms")
		}
		*p = d
		return nil
	})
	return p
}

// Int declares an integer setting within [min, max].
func (l *Loader) Int(env string, def, min, max int, usage string) *int {
	p := new(int)
	l.add(env, strconv.Itoa(def), usage, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			return fmt.Errorf("expected an integer from %d to %d", min, max)
		}
		*p = n
		return nil
	})
	return p
}

// Float declares a positive number setting.
func (l *Loader) Float(env string, def float64, usage string) *float64 {
	p := new(float64)
	l.add(env, strconv.FormatFloat(def, 'g', -1, 64), usage, func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return fmt.Errorf("expected a positive number")
		}
		*p = f
		return nil
	})
	return p
}

// Bool declares a boolean setting (true/false/1/0).
func (l *Loader) Bool(env string, def bool, usage string) *bool {
	p := new(bool)
	l.add(env, strconv.FormatBool(def), usage, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("expected true or false")
		}
		*p = b
		return nil
	})
	return p
}

// ErrHelp is returned by Parse when -h or -help was given; the usage has been printed.
var ErrHelp = flag.ErrHelp

// ErrVersion is returned by Parse when -version was given; the version has been printed
// ("edge v1.2.0 (revision 0123456789ab, go1.26.0)"). The program should exit 0.
var ErrVersion = errors.New("version printed")

// Exit reports whether err from Parse asks the program to exit successfully: -h, -help
// or -version was given and answered.
func Exit(err error) bool {
	return errors.Is(err, ErrHelp) || errors.Is(err, ErrVersion)
}

// Parse reads .env (if present), the environment and args, and validates every setting.
func (l *Loader) Parse(args []string) error {
	if err := godotenv.Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf(".env: %w", err)
	}
	for _, s := range l.settings {
		if v, ok := os.LookupEnv(s.env); ok {
			s.raw = v
		}
	}
	if err := l.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			l.PrintUsage(os.Stderr)
		}
		return err
	}
	if *l.version {
		fmt.Fprintf(l.out, "%s %s\n", l.fs.Name(), buildinfo.Read())
		return ErrVersion
	}
	if l.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", l.fs.Arg(0))
	}
	for _, s := range l.settings {
		if err := s.set(s.raw); err != nil {
			return fmt.Errorf("%s=%q: %w", s.env, s.raw, err)
		}
	}
	return nil
}

// PrintUsage writes every setting with its default.
func (l *Loader) PrintUsage(w io.Writer) {
	for _, s := range l.settings {
		fmt.Fprintf(w, "  %s / -%s (default %q)\n      %s\n", s.env, FlagName(s.env), s.def, s.usage)
	}
	fmt.Fprintf(w, "  -version\n      print the version and exit\n")
}

// HostPort validates a listen address such as 127.0.0.1:8080.
func HostPort(v string) error {
	if i := strings.LastIndex(v, ":"); i < 0 {
		return errors.New("expected host:port such as 127.0.0.1:8080")
	} else if p, err := strconv.Atoi(v[i+1:]); err != nil || p < 0 || p > 65535 {
		return errors.New("expected host:port with a port from 0 to 65535")
	}
	return nil
}

// OneOf returns a validator accepting exactly the given values.
func OneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, ok := range values {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("expected one of %s", strings.Join(values, ", "))
	}
}
