package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/charla/charla/cmd/internal/load/bench"
)

// The overload target of the performance issue: at twice the max sustainable rate for
// 30 s no acknowledged message is lost, memory stays bounded, and p99 is back within
// OverloadRecoverWithin of the load dropping. "Back" is judged as the threshold was
// measured (bench.OverloadResult.Spans): from OverloadRecoverWithin on, every span of the
// baseline's length has all its messages delivered and its p99 at most the baseline's.
// A per-window rule (every 1 s window's p99 under the baseline's) is also reported; it
// compares a p99 of 2,000 messages with one of 20,000 and fails windows of a server at
// rest (the baseline's own windows, judged the same way, are reported beside it).
// Bounded means the server's RSS peak (from the overload's start to the end of the
// drain) is at most its RSS just before the overload plus OverloadRSSGrowth: a backlog
// queued without bound at twice the sustainable rate (thousands of messages a second
// beyond what is served) outgrows it within the 30 s, a bounded queue does not.
const (
	OverloadRSSGrowth     = 256 << 20
	OverloadRecoverWithin = 5 * time.Second
)

// OverloadVerdict judges the target's three clauses: no acknowledged message lost, RSS
// bounded, p99 recovered in time.
func OverloadVerdict(r *bench.OverloadResult) (noAckedLoss, rssBounded, recovered bool) {
	noAckedLoss = len(r.Phases) == 3 && r.LostAcked() == 0
	rssBounded = r.RSSBefore > 0 && r.RSSPeak-r.RSSBefore <= OverloadRSSGrowth
	recovered = r.SpanRecovered && r.SpanRecoveredIn <= OverloadRecoverWithin
	return noAckedLoss, rssBounded, recovered
}

// OverloadMet reports whether all three clauses are met.
func OverloadMet(r *bench.OverloadResult) bool {
	a, b, c := OverloadVerdict(r)
	return a && b && c
}

// overloadGoals are the Targets rows of the overload mode; judged says whether they are
// targets (sqlite, mysql) or only reported (apart).
func overloadGoals(judged bool) []Goal {
	ran := func(f Figures) bool { return f.Overload != nil && len(f.Overload.Phases) == 3 }
	lost := func(f Figures) (float64, bool) {
		if !ran(f) {
			return 0, false
		}
		return float64(f.Overload.LostAcked()), true
	}
	growth := func(f Figures) (float64, bool) {
		if !ran(f) {
			return 0, false
		}
		return float64(f.Overload.RSSPeak-f.Overload.RSSBefore) / (1 << 20), true
	}
	recovery := func(f Figures) (float64, bool) {
		if !ran(f) {
			return 0, false
		}
		if !f.Overload.SpanRecovered {
			return math.Inf(1), true
		}
		return f.Overload.SpanRecoveredIn.Seconds(), true
	}
	goals := []Goal{
		{"overload: acked messages lost", "0", lost, "%.0f", atMostGoal(0), ""},
		{"overload: server RSS peak − RSS before (MiB)", fmt.Sprintf("≤ %d", OverloadRSSGrowth>>20), growth, "%.0f", atMostGoal(OverloadRSSGrowth >> 20), ""},
		{"overload: time until p99 is back at the baseline's (s)", fmt.Sprintf("≤ %.0f", OverloadRecoverWithin.Seconds()), recovery, "%.1f", atMostGoal(OverloadRecoverWithin.Seconds()), "not recovered"},
	}
	if !judged {
		for i := range goals {
			goals[i].Target, goals[i].ok = "(reported)", nil
		}
	}
	return goals
}

func atMostGoal(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }

// writeOverload writes the overload mode's section: what ran, the verdict, one row per
// phase, the recovery's windows and the overload's p99 per window.
func writeOverload(w io.Writer, s Scenario) {
	r := s.Charla.Overload
	if r == nil || len(r.Phases) != 3 {
		return
	}
	c := r.Config
	fmt.Fprintf(w, "### Overload\n\n")
	from := ""
	if s.OverloadFrom != "" {
		from = " (" + s.OverloadFrom + ")"
	}
	fmt.Fprintf(w, "%d sender→recipient pairs (provisioned with their contacts in %v; %d warm-up messages first), open loop: "+
		"a baseline of %d msg/s for %v, a pause until its messages arrived (%v), **%d msg/s for %v**%s, then at once (no pause: the backlog carries over) "+
		"the recovery, %d msg/s for %v, then up to %v for every message and reply to arrive (%v). "+
		"Each message counts in the phase that scheduled it. A message still unwritten a second after its phase's end is given up (unsent); "+
		"write lag is how late the writes were against the schedule; latency counts from the write to the recipient's read. "+
		"Lost acked: acknowledged (SERVER_ACK), never read by the recipient by the end of the drain. "+
		"Lost unacked: refused (ERROR_NOTIFICATION: 503 is pushback, the client sends again) or never answered, and never read. "+
		"No relay baseline: the verdict is absolute.\n\n",
		c.Pairs, r.Provision.Round(time.Millisecond), r.Warmup, c.BaseRate, c.Baseline, r.BaselineDrain.Round(time.Millisecond),
		c.Rate, c.Overload, from, c.BaseRate, c.Recovery, c.Drain, r.Drain.Round(time.Millisecond))
	writeOverloadVerdict(w, r)
	writeOverloadPhases(w, r)
	writeOverloadRSS(w, r)
	writeOverloadWindows(w, r)
}

// maxRSSShown bounds the RSS samples listed: every n-th is shown beyond it.
const maxRSSShown = 60

func writeOverloadRSS(w io.Writer, r *bench.OverloadResult) {
	if len(r.RSS) == 0 {
		return
	}
	step := (len(r.RSS) + maxRSSShown - 1) / maxRSSShown
	var v []string
	for i := 0; i < len(r.RSS); i += step {
		v = append(v, fmt.Sprintf("%.0f", mibs(r.RSS[i].RSS)))
	}
	fmt.Fprintf(w, "Server RSS MiB from the overload's start to the end of the drain, every %v: %s.\n\n", time.Duration(step)*r.Config.Window, strings.Join(v, ", "))
}

func writeOverloadVerdict(w io.Writer, r *bench.OverloadResult) {
	noLoss, bounded, recovered := OverloadVerdict(r)
	yes := func(ok bool) string { return map[bool]string{true: "yes", false: "**no**"}[ok] }
	rec := "not within the recovery"
	if r.SpanRecovered {
		rec = fmt.Sprintf("in %.1f s", r.SpanRecoveredIn.Seconds())
	}
	perWindow := "not within the recovery"
	if r.Recovered {
		perWindow = fmt.Sprintf("in %.1f s", r.RecoveredIn.Seconds())
	}
	if r.FirstOKFound && (!r.Recovered || r.FirstOK < r.RecoveredIn) {
		perWindow += fmt.Sprintf(", though a window was first good %.1f s after the overload", r.FirstOK.Seconds())
	}
	var acked int64
	for _, p := range r.Phases {
		acked += p.Acks
	}
	var baseGood int
	for _, x := range r.BaselineWindows {
		if x.OK {
			baseGood++
		}
	}
	fmt.Fprintf(w, "Verdict: %s. No acked message lost: %s (%d of %d acked). "+
		"Server RSS bounded (peak ≤ RSS before the overload + %d MiB): %s (before %.0f MiB, peak %.0f MiB at %.0f s after the overload began, "+
		"at the end of the recovery %.0f MiB, after the drain %.0f MiB). "+
		"p99 back within %.0f s: %s (%s; judged as the threshold was measured: from then on every %v of write time, as long as the baseline, "+
		"has all its messages delivered and p99 ≤ %s ms, %s). "+
		"Per %v window instead (every window from then on all delivered and p99 ≤ %s ms): %s; "+
		"the baseline's own %v windows judged so: %d of %d good.\n\n",
		map[bool]string{true: "**met**", false: "**not met**"}[noLoss && bounded && recovered],
		yes(noLoss), r.LostAcked(), acked,
		OverloadRSSGrowth>>20, yes(bounded), mibs(r.RSSBefore), mibs(r.RSSPeak), r.RSSPeakAt.Seconds(), mibs(r.RSSRecoveryEnd), mibs(r.RSSAfter),
		OverloadRecoverWithin.Seconds(), yes(recovered), rec, r.Span, ms(r.Threshold), threshold(r),
		r.Config.Window, ms(r.Threshold), perWindow, r.Config.Window, baseGood, len(r.BaselineWindows))
}

// threshold says where the recovery's p99 bound came from.
func threshold(r *bench.OverloadResult) string {
	if r.Config.MaxP99 > 0 {
		return "the bound given"
	}
	return "the baseline's p99"
}

func writeOverloadPhases(w io.Writer, r *bench.OverloadResult) {
	fmt.Fprintf(w, "| phase | rate offered | achieved | sent | unsent | write lag p99 ms | p50 ms | p99 ms | max ms | reply p50 ms | reply p99 ms | acks | ack errors | no reply | lost acked | lost unacked | dups | RSS peak MiB |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Phases {
		lat := []string{ms(p.P50), ms(p.P99), ms(p.Max)}
		if p.Delivered == 0 {
			lat = []string{"—", "—", "—"}
		}
		unsent := fmt.Sprint(p.Unsent)
		if p.WriteErrs > 0 {
			unsent += fmt.Sprintf(" (%d writes failed)", p.WriteErrs)
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %d | %s | %s | %s | %s | %s | %s | %s | %d | %s | %d | %d | %d | %d | %s |\n",
			p.Name, p.Rate, p.Achieved, p.Sent, unsent, ms(p.LagP99), lat[0], lat[1], lat[2], ms(p.ReplyP50), ms(p.ReplyP99),
			p.Acks, errs(p.AckErrors), p.NoReply, p.LostAcked, p.LostUnacked, p.Dups,
			cond(p.RSSPeak > 0, func() string { return fmt.Sprintf("%.0f", mibs(p.RSSPeak)) }))
	}
	fmt.Fprintln(w)
}

func writeOverloadWindows(w io.Writer, r *bench.OverloadResult) {
	var during []string
	for _, x := range r.Windows {
		if x.Start < 0 {
			during = append(during, windowP99(x))
		}
	}
	if len(during) > 0 {
		fmt.Fprintf(w, "p99 ms per %v of write time during the overload: %s.\n\n", r.Config.Window, strings.Join(during, ", "))
	}
	spans := map[time.Duration]bench.OverloadWindow{}
	for _, x := range r.Spans {
		spans[x.Start] = x
	}
	fmt.Fprintf(w, "| recovery window (s after the overload) | sent | delivered | p50 ms | p99 ms | max ms | good | p99 ms of the %v from here | span good |\n|---:|---:|---:|---:|---:|---:|---|---:|---|\n", r.Span)
	for _, x := range r.Windows {
		if x.Start < 0 {
			continue
		}
		lat := []string{ms(x.P50), ms(x.P99), ms(x.Max)}
		if x.Delivered == 0 {
			lat = []string{"—", "—", "—"}
		}
		span, spanGood := "—", "—"
		if sp, ok := spans[x.Start]; ok {
			span, spanGood = windowP99(sp), good(sp.OK)
		}
		fmt.Fprintf(w, "| %g | %d | %d | %s | %s | %s | %s | %s | %s |\n", x.Start.Seconds(), x.Sent, x.Delivered, lat[0], lat[1], lat[2],
			good(x.OK), span, spanGood)
	}
	fmt.Fprintln(w)
	if len(r.BaselineWindows) > 0 {
		var base []string
		for _, x := range r.BaselineWindows {
			base = append(base, windowP99(x))
		}
		fmt.Fprintf(w, "p99 ms per %v of write time during the baseline (its p99 %s ms): %s.\n\n", r.Config.Window, ms(r.Phases[0].P99), strings.Join(base, ", "))
	}
}

// good is the "good" column of a window or a span.
func good(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// windowP99 is a window's p99, or what stands in for it: "none sent", or the p99 with
// how many of its messages never arrived.
func windowP99(x bench.OverloadWindow) string {
	switch {
	case x.Sent == 0:
		return "none sent"
	case x.Delivered == 0:
		return fmt.Sprintf("none of %d delivered", x.Sent)
	case x.Delivered < x.Sent:
		return fmt.Sprintf("%s (%d not delivered)", ms(x.P99), x.Sent-x.Delivered)
	}
	return ms(x.P99)
}

func mibs(b int64) float64 { return float64(b) / (1 << 20) }
