// Package dbtel instruments database/sql with github.com/XSAM/otelsql the way Charla wants
// it: a client span per statement, named by its operation and main table as the
// OpenTelemetry database conventions say ("SELECT ChatMessage", "INSERT User": a few dozen
// names in all, whatever the statement text), with db.operation.name, db.collection.name
// and the statement with its literals replaced by "?" (db.query.text) as attributes, never
// argument values; transaction begin/commit/rollback spans; and the
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

// MaxSpanName is the longest span name, in bytes; a longer table name is cut there.
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
			st := summarized(query)
			attrs := []attribute.KeyValue{semconv.DBQueryText(truncate(st.normalized, maxQueryText))}
			if st.op != "" {
				attrs = append(attrs, semconv.DBOperationName(st.op))
			}
			if st.table != "" {
				attrs = append(attrs, semconv.DBCollectionName(st.table))
			}
			return attrs
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
			SpanFilter:           spanFilter,
		}),
	}
}

// spanFilter keeps spans to calls inside a recording span. On MySQL the driver
// interpolates the arguments (sqldb turns InterpolateParams on), so a statement with
// arguments is one query on the connection, one span. A statement it cannot interpolate
// (an argument type it does not know) is refused with driver.ErrSkip and run as a
// prepared statement: two spans then, the refused attempt not marked as an error
// (DisableErrSkip).
func spanFilter(ctx context.Context, _ otelsql.Method, _ string, _ []driver.NamedValue) bool {
	return trace.SpanFromContext(ctx).IsRecording()
}

// The same few statements run over and over: summarize each once. The cache is bounded
// so statements built at run time (IN lists of varying length) cannot grow it for ever.
const maxCached = 2048

var (
	cache     sync.Map // raw query → *statement
	cacheSize atomic.Int64
)

// statement is what spans need of one statement.
type statement struct {
	normalized string // Normalize(query)
	op, table  string // Summarize(query)
	span       string // SpanName(query)
}

func summarized(query string) *statement {
	if v, ok := cache.Load(query); ok {
		return v.(*statement)
	}
	st := &statement{normalized: Normalize(query)}
	st.op, st.table = summarize(st.normalized)
	st.span = spanName(st.op, st.table)
	if cacheSize.Load() < maxCached {
		if _, loaded := cache.LoadOrStore(query, st); !loaded {
			cacheSize.Add(1)
		}
	}
	return st
}

// SpanName is the span name of a statement: "OPERATION table" ("SELECT ChatMessage"), or
// the operation alone when it names no table ("BEGIN", "SAVEPOINT", "SELECT" without
// FROM), or "SQL" when the statement does not start with a keyword. At most MaxSpanName
// bytes.
func SpanName(query string) string {
	return summarized(query).span
}

func spanName(op, table string) string {
	switch {
	case op == "":
		return "SQL"
	case table == "":
		return op
	}
	return truncate(op+" "+table, MaxSpanName)
}

// maxOp bounds an operation keyword; longer first words are not keywords.
const maxOp = 16

// Summarize returns a statement's operation (its first keyword, upper case; for WITH, the
// keyword of the statement after the common table expressions) and its main table: the
// first table after FROM for SELECT and DELETE, after INTO for INSERT and REPLACE, after
// UPDATE; quotes are removed. A table is "" when there is none, or when it is a subquery.
func Summarize(query string) (op, table string) {
	return summarize(Normalize(query))
}

func summarize(normalized string) (op, table string) {
	toks := tokens(normalized)
	if len(toks) == 0 || !isKeyword(toks[0].text) {
		return "", ""
	}
	op = strings.ToUpper(toks[0].text)
	rest := toks[1:]
	if op == "WITH" {
		// The statement proper is the first DML keyword outside the CTEs' parentheses.
		for i, t := range rest {
			if t.depth == 0 && t.word {
				if k := strings.ToUpper(t.text); k == "SELECT" || k == "INSERT" || k == "UPDATE" || k == "DELETE" || k == "REPLACE" {
					op, rest = k, rest[i+1:]
					break
				}
			}
		}
	}
	switch op {
	case "SELECT", "DELETE":
		table = after(rest, "FROM")
	case "INSERT", "REPLACE":
		table = after(rest, "INTO")
	case "UPDATE":
		for _, t := range rest {
			if t.word && updateModifiers[strings.ToUpper(t.text)] {
				continue
			}
			table = tableName(t)
			break
		}
	}
	return op, table
}

// updateModifiers may stand between UPDATE and its table (MySQL, SQLite).
var updateModifiers = map[string]bool{"LOW_PRIORITY": true, "IGNORE": true, "OR": true,
	"ROLLBACK": true, "ABORT": true, "REPLACE": true, "FAIL": true}

// after returns the table named right after the first keyword kw outside parentheses.
func after(toks []token, kw string) string {
	for i, t := range toks {
		if t.depth == 0 && t.word && strings.EqualFold(t.text, kw) {
			if i+1 < len(toks) {
				return tableName(toks[i+1])
			}
			return ""
		}
	}
	return ""
}

// tableName is t as a table name without quotes, or "" when t is not an identifier.
func tableName(t token) string {
	if !t.word && !t.quoted {
		return ""
	}
	name := t.text
	if t.quoted {
		name = strings.ReplaceAll(name, "`", "")
		name = strings.ReplaceAll(name, `"`, "")
	}
	if name == "" || name == "?" {
		return ""
	}
	return name
}

func isKeyword(s string) bool {
	if len(s) == 0 || len(s) > maxOp {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			if s[i] != '_' {
				return false
			}
		}
	}
	return true
}

// token is a word, a quoted identifier (possibly qualified: a.`b`) or one other byte of a
// normalized statement, with the depth of parentheses it stands in.
type token struct {
	text   string
	word   bool // an unquoted identifier or keyword
	quoted bool // contains a quoted identifier
	depth  int
}

func tokens(s string) []token {
	var out []token
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case c == '(':
			out = append(out, token{text: "(", depth: depth})
			depth++
			i++
		case c == ')':
			if depth > 0 {
				depth--
			}
			out = append(out, token{text: ")", depth: depth})
			i++
		case isIdentByte(c) || c == '"' || c == '`':
			// An identifier, possibly quoted and qualified (schema.table).
			j, quoted := i, false
		ident:
			for j < len(s) {
				switch {
				case s[j] == '"' || s[j] == '`':
					end := strings.IndexByte(s[j+1:], s[j])
					if end < 0 {
						j = len(s)
					} else {
						j += end + 2
					}
					quoted = true
				case isIdentByte(s[j]) || s[j] == '.':
					j++
				default:
					break ident
				}
			}
			out = append(out, token{text: s[i:j], word: !quoted, quoted: quoted, depth: depth})
			i = j
		default:
			out = append(out, token{text: s[i : i+1], depth: depth})
			i++
		}
	}
	return out
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
