package rpc

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// A target is a service address as configured (CHAT_URL and its siblings): one entry or
// a comma-separated list of them, each host:port or http(s)://host[:port][/path].
type target struct {
	entries []entry
	// path is the path prefix every entry shares ("" for none).
	path string
}

// entry is one element of a target's list.
type entry struct {
	scheme string // "http" or "https"
	// authority is the host[:port] as written: the Host of requests sent to this entry.
	authority string
	// host and port are where to connect; a host that is a name (dns) is resolved by the
	// balancer into one address per record.
	host, port string
	dns        bool
}

// addr is the entry's own host:port, used until its name is resolved.
func (e entry) addr() string { return net.JoinHostPort(e.host, e.port) }

// CheckTarget validates a service address (CHAT_URL and its siblings): one entry or a
// comma-separated list, each host:port or http(s)://host[:port]; every entry of a list
// has the same path, if any. It is the validator the processes give their configuration,
// so a bad entry is reported with the variable's name before anything starts.
func CheckTarget(v string) error {
	_, err := parseTarget(v)
	return err
}

// parseTarget parses a service address; the errors name the entry at fault.
func parseTarget(v string) (target, error) {
	var t target
	if strings.TrimSpace(v) == "" {
		return t, errors.New("empty: want host:port, http(s)://host:port or a comma-separated list of them")
	}
	parts := strings.Split(v, ",")
	for i, raw := range parts {
		e, path, err := parseEntry(strings.TrimSpace(raw))
		if err != nil {
			if len(parts) == 1 {
				return target{}, err
			}
			return target{}, fmt.Errorf("entry %d of %d (%q): %w", i+1, len(parts), strings.TrimSpace(raw), err)
		}
		if i == 0 {
			t.path = path
		} else if path != t.path {
			return target{}, fmt.Errorf("entry %d of %d (%q): path %q differs from the first entry's %q; every replica must serve at the same path", i+1, len(parts), strings.TrimSpace(raw), path, t.path)
		}
		t.entries = append(t.entries, e)
	}
	return t, nil
}

// parseEntry parses one host:port or http(s) URL, returning its path without the
// trailing slash.
func parseEntry(s string) (entry, string, error) {
	const want = "want host:port or http(s)://host[:port]"
	if s == "" {
		return entry{}, "", errors.New("empty entry (a stray comma?): " + want)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return entry{}, "", errors.New("contains white space: " + want)
	}
	e := entry{scheme: "http"}
	var path string
	if scheme, _, ok := strings.Cut(s, "://"); ok {
		u, err := url.Parse(s)
		if err != nil {
			return entry{}, "", fmt.Errorf("%s: %w", want, err)
		}
		switch {
		case scheme != "http" && scheme != "https":
			return entry{}, "", fmt.Errorf("scheme %q: %s", scheme, want)
		case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
			return entry{}, "", errors.New("user info, query or fragment: " + want)
		case u.Hostname() == "":
			return entry{}, "", errors.New("no host: " + want)
		}
		e.scheme, e.authority, e.host, e.port = u.Scheme, u.Host, u.Hostname(), u.Port()
		if e.port == "" {
			e.port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		} else if err := checkPort(e.port); err != nil {
			return entry{}, "", err
		}
		path = strings.TrimSuffix(u.EscapedPath(), "/")
	} else {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return entry{}, "", fmt.Errorf("%s: %w", want, err)
		}
		if host == "" {
			return entry{}, "", errors.New("no host: " + want)
		}
		if err := checkPort(port); err != nil {
			return entry{}, "", err
		}
		e.authority, e.host, e.port = s, host, port
	}
	// An IP address is one replica; so is localhost, which the dialer resolves itself (the
	// balancer would otherwise spread calls over 127.0.0.1 and ::1, one of which is often
	// not listening). Any other name is resolved, one replica per record.
	e.dns = net.ParseIP(e.host) == nil && e.host != "localhost"
	return e, path, nil
}

// checkPort accepts a port from 1 to 65535.
func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want a number from 1 to 65535", p)
	}
	return nil
}

// baseURL is the URL clients are built with: the first entry's. The balancer sends each
// request to the replica it picks, keeping the path.
func (t target) baseURL() string {
	e := t.entries[0]
	return e.scheme + "://" + e.authority + t.path
}
