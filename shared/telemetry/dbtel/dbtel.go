// Package dbtel instruments database/sql with github.com/XSAM/otelsql the way Charla wants
// it: a client span per statement, named by the statement with its literals replaced by
// "?", never carrying argument values; transaction begin/commit/rollback spans; and the
// db.client.operation.duration histogram (the seed's "latencia de BD").
//
// Spans are made only inside a recording span (a Connect call, a frame): migrations,
// pings and background sweeps would otherwise each start a trace of their own, and with
// tracing off no span name is ever computed. otelsql takes its providers from the
// OpenTelemetry globals when the database is opened; before telemetry.Setup has run those
// are the globals' delegates, which forward to the providers Setup installs later, so the
// order of Open and Setup does not matter.
package dbtel

import (
	"context"
	"database/sql/driver"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// System names the database system behind a connection.
type System string

const (
	// SQLite is modernc.org/sqlite.
	SQLite System = "sqlite"
	// MySQL is github.com/go-sql-driver/mysql.
	MySQL System = "mysql"
)

// MaxSpanName is the longest span name, in bytes; longer statements are cut there.
const MaxSpanName = 120

// maxQueryText is the longest db.query.text attribute kept.
const maxQueryText = 2048

// Options are the otelsql options for a database of system.
func Options(system System) []otelsql.Option {
	sysAttr := semconv.DBSystemNameSQLite
	if system == MySQL {
		sysAttr = semconv.DBSystemNameMySQL
	}
	return []otelsql.Option{
		otelsql.WithAttributes(sysAttr),
		otelsql.WithSpanNameFormatter(func(_ context.Context, method otelsql.Method, query string) string {
			if query == "" {
				return string(method)
			}
			return SpanName(query)
		}),
		otelsql.WithAttributesGetter(func(_ context.Context, _ otelsql.Method, query string, _ []driver.NamedValue) []attribute.KeyValue {
			if query == "" {
				return nil
			}
			return []attribute.KeyValue{semconv.DBQueryText(queryText(query))}
		}),
		otelsql.WithDisableSkipErrMeasurement(true),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			DisableErrSkip: true,
			// otelsql's own db.query.text is the raw statement; ours has literals removed.
			DisableQuery:         true,
			OmitConnResetSession: true,
			OmitConnPrepare:      true,
			OmitRows:             true,
			OmitConnectorConnect: true,
			SpanFilter:           spanFilter(system),
		}),
	}
}

// spanFilter keeps spans to calls inside a recording span. On MySQL a statement with
// arguments is first offered to the connection, which answers driver.ErrSkip (the driver
// does not interpolate), and then run as a prepared statement: only the second is a query.
func spanFilter(system System) otelsql.SpanFilter {
	return func(ctx context.Context, method otelsql.Method, _ string, args []driver.NamedValue) bool {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return false
		}
		if system == MySQL && len(args) > 0 && (method == otelsql.MethodConnQuery || method == otelsql.MethodConnExec) {
			return false
		}
		return true
	}
}

// The same few statements run over and over: normalize each once. The cache is bounded
// so statements built at run time (IN lists of varying length) cannot grow it for ever.
const maxCached = 2048

var (
	cache     sync.Map // raw query → normalized
	cacheSize atomic.Int64
)

func normalized(query string) string {
	if v, ok := cache.Load(query); ok {
		return v.(string)
	}
	n := Normalize(query)
	if cacheSize.Load() < maxCached {
		if _, loaded := cache.LoadOrStore(query, n); !loaded {
			cacheSize.Add(1)
		}
	}
	return n
}

// SpanName is the span name of a statement: Normalize(query), cut at MaxSpanName bytes.
func SpanName(query string) string {
	return truncate(normalized(query), MaxSpanName)
}

func queryText(query string) string {
	return truncate(normalized(query), maxQueryText)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Normalize returns query with every string and number literal replaced by "?", comments
// removed and runs of white space collapsed to one space. Statements use placeholders, so
// this changes nothing in the usual case; it is the guarantee that a value written into a
// statement by mistake still never reaches a span. Quoted identifiers ("User", `User`) are
// kept.
func Normalize(query string) string {
	var b strings.Builder
	b.Grow(len(query))
	space := false // a space is pending
	emit := func(s string) {
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteString(s)
	}
	prevIdent := false // the previous byte written belongs to an identifier or keyword
	for i := 0; i < len(query); {
		c := query[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			space = true
			prevIdent = false
			i++
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			for i < len(query) && query[i] != '\n' {
				i++
			}
			space = true
			prevIdent = false
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				i = len(query)
			} else {
				i += 2 + end + 2
			}
			space = true
			prevIdent = false
		case c == '\'':
			// A string literal; '' inside is an escaped quote, and MySQL also allows \'.
			i++
			for i < len(query) {
				if query[i] == '\\' && i+1 < len(query) {
					i += 2
					continue
				}
				if query[i] == '\'' {
					if i+1 < len(query) && query[i+1] == '\'' {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			emit("?")
			prevIdent = false
		case c == '"' || c == '`':
			// A quoted identifier: kept as it is.
			end := strings.IndexByte(query[i+1:], c)
			j := len(query)
			if end >= 0 {
				j = i + 1 + end + 1
			}
			emit(query[i:j])
			i = j
			prevIdent = true
		case c >= '0' && c <= '9' && !prevIdent:
			// A number literal (not a digit inside an identifier such as t1):
			// digits, a decimal point, an exponent, hex digits.
			j := i + 1
			for j < len(query) && (isIdentByte(query[j]) || query[j] == '.' ||
				((query[j] == '+' || query[j] == '-') && (query[j-1] == 'e' || query[j-1] == 'E'))) {
				j++
			}
			emit("?")
			i = j
			prevIdent = false
		default:
			j := i + 1
			if isIdentByte(c) {
				for j < len(query) && isIdentByte(query[j]) {
					j++
				}
				prevIdent = true
			} else {
				prevIdent = false
			}
			emit(query[i:j])
			i = j
		}
	}
	return b.String()
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
