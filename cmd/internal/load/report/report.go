// Package report turns the load tool's figures into Markdown: one section per scenario
// with a summary against the targets of the performance issue, and one table per mode,
// every figure beside the raw relay's from the same run and their ratio.
package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/charla/charla/cmd/internal/load/bench"
)

// Sustainable limits: the highest rate whose p99 is at most MaxP99, with nothing lost and
// at least MinAchieved of the rate achieved.
const (
	MaxP99      = 50 * time.Millisecond
	MinAchieved = 0.98
)

// Sustainable returns the highest rate of phases that meets the limits, or 0.
func Sustainable(phases []bench.ChatPhase) int {
	best := 0
	for _, p := range phases {
		if p.P99 <= MaxP99 && p.Lost == 0 && p.Sent > 0 && p.Achieved >= MinAchieved*float64(p.Rate) && p.Rate > best {
			best = p.Rate
		}
	}
	return best
}

// Figures are one target's results; nil parts were not run.
type Figures struct {
	Idle     *bench.IdleResult
	Chat     *bench.ChatResult
	Overload *bench.OverloadResult
}

// Phase returns the chat phase at rate, if run.
func (f Figures) Phase(rate int) (bench.ChatPhase, bool) {
	if f.Chat == nil {
		return bench.ChatPhase{}, false
	}
	for _, p := range f.Chat.Phases {
		if p.Rate == rate {
			return p, true
		}
	}
	return bench.ChatPhase{}, false
}

// Level returns the idle level at conns, if run.
func (f Figures) Level(conns int) (bench.IdleLevel, bool) {
	if f.Idle == nil {
		return bench.IdleLevel{}, false
	}
	for _, l := range f.Idle.Levels {
		if l.Conns == conns {
			return l, true
		}
	}
	return bench.IdleLevel{}, false
}

// Scenario is one configuration of the server and what it measured.
type Scenario struct {
	Key      string // sqlite, mysql, apart, attach
	Title    string
	Command  string // the command that reproduces this scenario alone
	Describe string // how the server ran
	Pairs    int
	Phase    time.Duration
	Charla   Figures
	Relay    Figures
	Err      error // why it stopped early, if it did
	// OverloadFrom says where the overload's rate came from ("2 × the max sustainable
	// rate of the chat mode above").
	OverloadFrom string
}

// Goal is a target of the issue checked against a scenario.
type Goal struct {
	Figure string
	Target string
	value  func(f Figures) (float64, bool)
	format string
	ok     func(v float64) bool
	inf    string // what a value of +Inf stands for; "messages lost" when empty
}

// Goals returns the targets for a scenario key (none for apart and attach).
func Goals(key string) []Goal {
	sust := func(f Figures) (float64, bool) {
		if f.Chat == nil {
			return 0, false
		}
		return float64(Sustainable(f.Chat.Phases)), true
	}
	p99At := func(rate int) func(Figures) (float64, bool) {
		return func(f Figures) (float64, bool) {
			p, ok := f.Phase(rate)
			if ok && p.Lost > 0 {
				return math.Inf(1), true // a latency target is not met while messages are lost
			}
			return float64(p.P99) / float64(time.Millisecond), ok
		}
	}
	cpuAt := func(rate int) func(Figures) (float64, bool) {
		return func(f Figures) (float64, bool) {
			p, ok := f.Phase(rate)
			if ok && p.Lost > 0 {
				return math.Inf(1), true // CPU per message means nothing while messages are lost
			}
			return bench.Per1000(p.CPU+p.DBCPU, p.Sent), ok
		}
	}
	hsAt := func(conns int) func(Figures) (float64, bool) {
		return func(f Figures) (float64, bool) { l, ok := f.Level(conns); return l.PerSec, ok }
	}
	rssAt := func(conns int) func(Figures) (float64, bool) {
		return func(f Figures) (float64, bool) { l, ok := f.Level(conns); return l.PerConnKiB, ok }
	}
	atLeast := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	atMost := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	switch key {
	case "sqlite":
		return append([]Goal{
			{"max sustainable rate (msg/s)", "≥ 10,000 (5,000 at least)", sust, "%.0f", atLeast(10000), ""},
			{"p99 at 2,000 msg/s (ms)", "≤ 10", p99At(2000), "%.2f", atMost(10), ""},
			{"server CPU s per 1,000 msgs at 5,000 msg/s", "≤ 0.25", cpuAt(5000), "%.3f", atMost(0.25), ""},
			{"handshakes/s at 10,000 conns", "≥ 4,000", hsAt(10000), "%.0f", atLeast(4000), ""},
			{"RSS KiB per idle conn at 19,000 conns", "≤ 12", rssAt(19000), "%.1f", atMost(12), ""},
		}, overloadGoals(true)...)
	case "mysql":
		return append([]Goal{
			{"max sustainable rate (msg/s)", "≥ 2,500 (goal 5,000)", sust, "%.0f", atLeast(2500), ""},
			{"p99 at 1,000 msg/s (ms)", "≤ 20", p99At(1000), "%.2f", atMost(20), ""},
			{"handshakes/s at 10,000 conns", "≥ 3,000", hsAt(10000), "%.0f", atLeast(3000), ""},
			{"Charla + MariaDB CPU s per 1,000 msgs at 1,000 msg/s", "(reported)", cpuAt(1000), "%.3f", nil, ""},
		}, overloadGoals(true)...)
	case "apart":
		soak := func(count func(bench.Outcome) int64) func(Figures) (float64, bool) {
			return func(f Figures) (float64, bool) {
				if f.Chat == nil || f.Chat.Soak == nil {
					return 0, false
				}
				return float64(count(f.Chat.Soak.Outcome)), true
			}
		}
		return append([]Goal{
			{"acknowledged messages lost in the soak (2,000 msg/s for 60 s)", "0", soak(func(o bench.Outcome) int64 { return o.AckedLost }), "%.0f", atMost(0), ""},
			{"soak: sends refused with an error (pushback; the client sends them again)", "(reported)", soak(func(o bench.Outcome) int64 { return o.Refused }), "%.0f", nil, ""},
			{"soak: delivered after the grace (by a minute after the soak)", "(reported)", soak(func(o bench.Outcome) int64 { return o.Late }), "%.0f", nil, ""},
			{"soak: sends neither answered nor delivered by a minute after the soak", "(reported)", soak(func(o bench.Outcome) int64 { return o.Unanswered }), "%.0f", nil, ""},
			{"max sustainable rate (msg/s)", "(reported)", sust, "%.0f", nil, ""},
			{"p99 at 2,000 msg/s (ms)", "(reported)", p99At(2000), "%.2f", nil, ""},
			{"handshakes/s at 10,000 conns", "(reported)", hsAt(10000), "%.0f", nil, ""},
		}, overloadGoals(false)...)
	}
	return nil
}

// runTable writes the table that says where and how a report was made; loads are
// pairs of a row name and its load averages.
func runTable(w io.Writer, date time.Time, commit, cpuModel string, cores int, loads []string, command, goVersion string) {
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| date | %s |\n", date.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "| commit | `%s` |\n", commit)
	fmt.Fprintf(w, "| machine | %d cores, %s |\n", cores, cpuModel)
	for i := 0; i+1 < len(loads); i += 2 {
		fmt.Fprintf(w, "| %s | %s |\n", loads[i], loads[i+1])
	}
	fmt.Fprintf(w, "| Go | %s |\n", goVersion)
	fmt.Fprintf(w, "| command | `%s` |\n\n", command)
}

// Header writes the top of BENCHMARKS.md.
func Header(w io.Writer, date time.Time, commit, cpuModel string, cores int, loadAvg, command, goVersion string) {
	fmt.Fprintf(w, "# Benchmarks\n\n")
	fmt.Fprintf(w, "Written by `make bench-system` (`cmd/charla-load`); do not edit by hand.\n\n")
	runTable(w, date, commit, cpuModel, cores, []string{"load average at start", loadAvg}, command, goVersion)
	fmt.Fprintf(w, "How to read: the load tool runs on the same machine as the server, loopback only. "+
		"Every figure stands beside the same figure of a raw gorilla/websocket relay (no persistence, same "+
		"frames, same client code) started by the tool in the same run: the floor. \"× relay\" is Charla's "+
		"figure divided by the relay's, so it stays comparable when the machine is busy. Latency is the "+
		"sender's write to the recipient's read of NEW_CHAT_MESSAGE; a message not read within the grace "+
		"after its phase is lost. A rate is sustainable when p99 ≤ %v, nothing is lost and ≥ %.0f %% of it "+
		"is achieved. CPU is utime + stime from /proc of the server's processes (and of the database server "+
		"where one is used), over the phase and its drain.\n\n", MaxP99, MinAchieved*100)
}

// writeSectionHead writes what every section (bench or soak) starts with: its title, the
// command that reproduces it, the server it ran against and, if the run ended early, why.
func writeSectionHead(w io.Writer, title, command, describe string, err error) {
	fmt.Fprintf(w, "## %s\n\n", title)
	fmt.Fprintf(w, "Reproduce: `%s`\n\n", command)
	if describe != "" {
		fmt.Fprintf(w, "Server: %s.\n\n", describe)
	}
	if err != nil {
		fmt.Fprintf(w, "**Stopped early:** %s\n\n", oneLine(err.Error()))
	}
}

// Write writes a scenario's section.
func Write(w io.Writer, s Scenario) {
	writeSectionHead(w, s.Title, s.Command, s.Describe, s.Err)
	writeGoals(w, s)
	writeIdle(w, s)
	writeStorm(w, s)
	writeChat(w, s)
	writeOverload(w, s)
}

func writeGoals(w io.Writer, s Scenario) {
	goals := Goals(s.Key)
	if len(goals) == 0 {
		return
	}
	fmt.Fprintf(w, "### Targets\n\n| figure | target | Charla | relay | × relay | met |\n|---|---|---:|---:|---:|---|\n")
	for _, g := range goals {
		v, ok := g.value(s.Charla)
		if !ok {
			fmt.Fprintf(w, "| %s | %s | not run | | | |\n", g.Figure, g.Target)
			continue
		}
		rv, rok := g.value(s.Relay)
		met := ""
		if g.ok != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[!math.IsInf(v, 0) && g.ok(v)]
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", g.Figure, g.Target, g.show(v),
			cond(rok, func() string { return g.show(rv) }), ratio(v, rv, rok && !math.IsInf(v, 0) && !math.IsInf(rv, 0)), met)
	}
	fmt.Fprintln(w)
}

// show formats a goal's figure; +Inf stands for g.inf, by default "messages lost".
func (g Goal) show(v float64) string {
	if math.IsInf(v, 0) {
		return cond(g.inf == "", "messages lost") + g.inf
	}
	return fmt.Sprintf(g.format, v)
}

func writeIdle(w io.Writer, s Scenario) {
	idle := s.Charla.Idle
	if idle == nil || len(idle.Levels) == 0 {
		return
	}
	fmt.Fprintf(w, "### Idle connections\n\n%d users (provisioned over RPC in %v); connections added from the previous level, %s; RSS per connection = (RSS at the level − RSS before any connection) / connections.\n\n",
		idle.Users, idle.Provision.Round(time.Millisecond), "the handshake counted once the server sent its first frame when it sends one (protocol v2)")
	fmt.Fprintf(w, "| connections | handshakes/s | relay | × relay | RSS KiB/conn | relay | × relay | server RSS MiB | failed attempts |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, l := range idle.Levels {
		r, ok := s.Relay.Level(l.Conns)
		fmt.Fprintf(w, "| %d | %.0f | %s | %s | %.1f | %s | %s | %.0f | %s |\n", l.Conns, l.PerSec,
			cond(ok, fmt.Sprintf("%.0f", r.PerSec)), ratio(l.PerSec, r.PerSec, ok),
			l.PerConnKiB, cond(ok, fmt.Sprintf("%.1f", r.PerConnKiB)), ratio(l.PerConnKiB, r.PerConnKiB, ok),
			float64(l.RSS)/(1<<20), kinds(l.FailuresBy))
	}
	fmt.Fprintln(w)
}

func writeStorm(w io.Writer, s Scenario) {
	st := s.Charla.Idle
	if st == nil || st.Storm == nil {
		return
	}
	var rs *bench.StormResult
	if s.Relay.Idle != nil {
		rs = s.Relay.Idle.Storm
	}
	fmt.Fprintf(w, "### Reconnection storm\n\nEvery client drops its connection at once and reconnects at once (retrying with jittered backoff from 50 ms, at most 20 attempts).\n\n")
	fmt.Fprintf(w, "| clients | back | all back in (s) | relay | × relay | failed attempts | relay |\n|---:|---:|---:|---:|---:|---|---|\n")
	took := fmt.Sprintf("%.2f", st.Storm.Took.Seconds())
	complete := st.Storm.Reconnected == st.Storm.Clients
	if !complete {
		took = fmt.Sprintf("not all within %.0f", st.Storm.Took.Seconds())
	}
	fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s |\n\n", st.Storm.Clients, st.Storm.Reconnected, took,
		cond(rs != nil, func() string { return fmt.Sprintf("%.2f", rs.Took.Seconds()) }), ratio(st.Storm.Took.Seconds(), seconds(rs), rs != nil && complete),
		kinds(st.Storm.FailuresBy), cond(rs != nil, func() string { return kinds(rs.FailuresBy) }))
}

// kinds formats failed attempts by kind ("none" when there were none).
func kinds(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

func seconds(rs *bench.StormResult) float64 {
	if rs == nil {
		return 0
	}
	return rs.Took.Seconds()
}

func writeChat(w io.Writer, s Scenario) {
	c := s.Charla.Chat
	if c == nil || len(c.Phases) == 0 {
		return
	}
	warm := fmt.Sprintf("a warm-up of %d messages (one per pair per round, until a round loses none) came first", c.Warmup)
	if c.WarmupLost > 0 {
		warm += fmt.Sprintf("; its last round still lost %d", c.WarmupLost)
	}
	fmt.Fprintf(w, "### Chat\n\n%d sender→recipient pairs (provisioned with their contacts in %v), open-loop fixed total rate, %v per rate; %s. Max sustainable rate: **%d msg/s** (relay: %d).\n\n",
		c.Pairs, c.Provision.Round(time.Millisecond), s.Phase, warm, Sustainable(c.Phases), relaySustainable(s.Relay, c.Phases))
	fmt.Fprintf(w, "| rate msg/s | achieved | p50 ms | p90 ms | p99 ms | max ms | lost | ack errors | CPU s/1k msgs | DB CPU s/1k | relay p99 ms | p99 × relay | relay CPU s/1k | CPU × relay | load tool CPU s/1k |\n")
	fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range c.Phases {
		r, ok := s.Relay.Phase(p.Rate)
		cpu := bench.Per1000(p.CPU, p.Sent)
		rcpu := bench.Per1000(r.CPU, r.Sent)
		lat := []string{ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max)}
		if p.Delivered == 0 {
			lat = []string{"—", "—", "—", "—"} // nothing arrived: no latency to show
		}
		fmt.Fprintf(w, "| %d | %.0f | %s | %s | %s | %s | %s | %s | %.3f | %s | %s | %s | %s | %s | %.3f |\n",
			p.Rate, p.Achieved, lat[0], lat[1], lat[2], lat[3], lost(p), errs(p.AckErrors),
			cpu, cond(p.DBCPU > 0, func() string { return fmt.Sprintf("%.3f", bench.Per1000(p.DBCPU, p.Sent)) }),
			cond(ok, func() string { return ms(r.P99) }), ratio(float64(p.P99), float64(r.P99), ok && p.Delivered > 0),
			cond(ok, func() string { return fmt.Sprintf("%.3f", rcpu) }), ratio(cpu, rcpu, ok), bench.Per1000(p.ClientCPU, p.Sent))
	}
	fmt.Fprintln(w)
	if p := c.Soak; p != nil {
		o := p.Outcome
		fmt.Fprintf(w, "Soak: %d msg/s for %v: achieved %.0f, p50 %s ms, p99 %s ms, max %s ms, not delivered within the grace %s, ack errors %s, CPU %.3f s/1k msgs (DB %.3f). "+
			"Of the %d written: %d delivered in time, %d late, **%d acknowledged and lost**, %d refused, %d unanswered (by the end of the wait after the soak).\n\n",
			p.Rate, p.Duration, p.Achieved, ms(p.P50), ms(p.P99), ms(p.Max), lost(*p), errs(p.AckErrors),
			bench.Per1000(p.CPU, p.Sent), bench.Per1000(p.DBCPU, p.Sent),
			p.Sent, o.Delivered, o.Late, o.AckedLost, o.Refused, o.Unanswered)
	}
}

func relaySustainable(r Figures, phases []bench.ChatPhase) int {
	var rp []bench.ChatPhase
	for _, p := range phases {
		if x, ok := r.Phase(p.Rate); ok {
			rp = append(rp, x)
		}
	}
	return Sustainable(rp)
}

func lost(p bench.ChatPhase) string {
	s := "0"
	if p.Lost > 0 {
		s = fmt.Sprintf("%d of %d", p.Lost, p.Sent)
	}
	var notes []string
	if p.Late > 0 {
		notes = append(notes, fmt.Sprintf("%d late", p.Late))
	}
	if p.Dropped > 0 {
		notes = append(notes, fmt.Sprintf("%d connections closed", p.Dropped))
	}
	if p.WriteErrs > 0 {
		notes = append(notes, fmt.Sprintf("%d writes failed", p.WriteErrs))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

func errs(m map[int]int64) string {
	if len(m) == 0 {
		return "none"
	}
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", m[c], c))
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// ratio formats v / r, or nothing when r is unknown or zero.
func ratio(v, r float64, ok bool) string {
	if !ok || r == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", v/r)
}

// cond returns s (a string, or a func producing one) when ok, else "".
func cond(ok bool, s any) string {
	if !ok {
		return ""
	}
	switch v := s.(type) {
	case string:
		return v
	case func() string:
		return v()
	}
	return fmt.Sprint(s)
}

func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "" })
	if len(lines) > 6 {
		lines = append(lines[:6], "…")
	}
	return strings.Join(lines, " / ")
}
