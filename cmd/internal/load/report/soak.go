package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/charla/charla/cmd/internal/load/bench"
	"github.com/charla/charla/cmd/internal/load/soak"
)

// SoakScenario is one target's soak.
type SoakScenario struct {
	Title    string
	Command  string
	Describe string
	Result   *bench.SoakResult // nil when it stopped before the load
	Err      error
	// Dumps are the goroutine dumps taken of the processes that were not flat.
	Dumps []string
}

// SoakPassed reports whether a soak passed: every server process flat, no acknowledged
// message lost (late, refused and unanswered ones are reported, not judged, as in the
// overload), none twice, and no seq skipped or repeated.
func SoakPassed(r *bench.SoakResult) bool {
	return r != nil && r.Flat() && r.Phase.Sent > 0 && r.Outcome.AckedLost == 0 && r.Phase.Dups == 0 && r.SeqGaps == 0 && r.SeqRepeats == 0
}

// SoakHeader writes the top of the soak report.
func SoakHeader(w io.Writer, date time.Time, commit, cpuModel string, cores int, loadStart, loadEnd, command, goVersion string) {
	fmt.Fprintf(w, "# Soak\n\n")
	runTable(w, date, commit, cpuModel, cores,
		[]string{"load average at start", loadStart, "load average at end", loadEnd}, command, goVersion)
}

// WriteSoak writes one soak's section: the verdict, the messages, each process's verdict
// and the figures over time.
func WriteSoak(w io.Writer, s SoakScenario) {
	writeSectionHead(w, s.Title, s.Command, s.Describe, s.Err)
	r := s.Result
	if r == nil {
		return
	}
	c := r.Config
	b := c.Bounds
	verdict := map[bool]string{true: "**passed**", false: "**failed**"}[SoakPassed(r)]
	fmt.Fprintf(w, "Verdict: %s. It passes when every server process is flat and no acknowledged message is lost, none duplicated and none out of sequence "+
		"(late, refused and unanswered messages are reported below, not judged: the late ones arrived, the client sends the others again). "+
		"Flat: the lowest of a figure's last %d samples is at most the lowest of its first %d samples after the %v warm-up "+
		"plus %.0f %% (RSS, plus %.0f MiB) or plus %.0f %% + %d (goroutines, open files): floors, so a transient backlog "+
		"(requests in flight on an overloaded machine) or garbage awaiting GC does not count, and a leak, which raises every sample, does.\n\n",
		verdict, b.Window, b.Window, c.FlatAfter, b.RSSGrowth*100, float64(b.RSSSlack)/(1<<20), b.CountGrowth*100, b.CountSlack)
	fmt.Fprintf(w, "Load: %d sender→recipient pairs at %d msg/s in all for %v (after %d warm-up messages); every %.3g s a recipient "+
		"(round robin) closes its connection (politely or by dropping TCP, in turn), stays away 0–%v and reconnects on the next edge "+
		"with `resume=<the highest seq it saw>` (protocol §8.3). Processes sampled every %v: RSS (VmRSS), threads and open files "+
		"(entries of /proc/<pid>/fd) from /proc, goroutines from `go_goroutines` of the process's /metrics.\n\n",
		c.Pairs, c.Rate, c.Duration, r.Warmup, 1/max(c.Churn, 1e-9), 2*c.Offline, c.Interval)
	if r.Phase.Sent == 0 && len(r.Rows) > 0 {
		// The load stopped before its end: runPhase's totals were never taken.
		last := r.Rows[len(r.Rows)-1]
		fmt.Fprintf(w, "The load stopped before its end; at its last sample (%s): sent %d, delivered %d (%d replayed), duplicates %d, %d reconnections.\n\n",
			clock(last.At), last.Traffic.Sent, last.Traffic.Delivered, last.Traffic.Replayed, last.Traffic.Dups, last.Traffic.Reconnects)
	} else {
		writeSoakMessages(w, r)
	}
	writeSoakChecks(w, r)
	if len(s.Dumps) > 0 {
		fmt.Fprintf(w, "Goroutine dumps of the processes that were not flat (SIGQUIT after the load): %s.\n\n", strings.Join(s.Dumps, ", "))
	}
	writeSoakOverTime(w, r)
}

func writeSoakMessages(w io.Writer, r *bench.SoakResult) {
	p := r.Phase
	fmt.Fprintf(w, "### Messages\n\n| figure | value |\n|---|---:|\n")
	rows := [][2]string{
		{"offered / sent (written)", fmt.Sprintf("%d / %d", p.Offered, p.Sent)},
		{"achieved rate (msg/s)", fmt.Sprintf("%.0f", p.Achieved)},
		{"drain: from the last write until everything arrived (grace " + r.Config.Grace.String() + ")", p.Drain.Round(time.Second).String()},
		{"acknowledged (SERVER_ACK)", fmt.Sprint(p.Acks)},
		{"ack errors", errs(p.AckErrors)},
		{"delivered (NEW_CHAT_MESSAGE read)", fmt.Sprint(p.Delivered)},
		{"of which replayed after a resume", fmt.Sprint(r.Replayed)},
		{"**duplicates**", fmt.Sprint(p.Dups)},
		{"events skipped in a recipient's seq (gaps)", fmt.Sprint(r.SeqGaps)},
		{"events seen again (seq not above the last)", fmt.Sprint(r.SeqRepeats)},
		{"reconnections begun", fmt.Sprint(r.Reconnects)},
		{"resumed (`ok`) / `failed`", fmt.Sprintf("%d / %d", r.ResumeOK, r.ResumeFailed)},
		{"events skipped by failed resumes", fmt.Sprint(r.SkippedByFailed)},
		{"reconnections that never got back", fmt.Sprint(r.ReconnectErrors)},
		{"failed handshake attempts while reconnecting", fmt.Sprint(r.DialFailures)},
		{"churn ticks skipped (recipient still away)", fmt.Sprint(r.ChurnSkipped)},
		{"connections the server closed, reopened at once (recipients resuming)", fmt.Sprint(r.Mends)},
		{"of which, by side and close code", closes(r.ServerCloses)},
		{"connections closed at the end of the load", fmt.Sprint(r.Closed)},
		{"writes failed / due but unsent", fmt.Sprintf("%d / %d", p.WriteErrs, p.Unsent)},
		{"latency of live deliveries p50 / p90 / p99 / max (ms)", fmt.Sprintf("%s / %s / %s / %s", ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max))},
		{"latency of replayed deliveries p50 / p99 / max (ms; includes the time away)", fmt.Sprintf("%s / %s / %s", ms(r.ReplayP50), ms(r.ReplayP99), ms(r.ReplayMax))},
		{"server CPU s per 1,000 msgs", fmt.Sprintf("%.3f", bench.Per1000(p.CPU, p.Sent))},
		{"database server CPU s per 1,000 msgs", cond(len(r.Config.Procs) > 0 && p.DBCPU > 0, func() string { return fmt.Sprintf("%.3f", bench.Per1000(p.DBCPU, p.Sent)) })},
		{"load tool CPU s per 1,000 msgs", fmt.Sprintf("%.3f", bench.Per1000(p.ClientCPU, p.Sent))},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "| %s | %s |\n", row[0], row[1])
	}
	fmt.Fprintln(w)
	writeSoakOutcome(w, r)
}

// writeSoakOutcome writes what became of every message written, as the overload sorts
// them: the verdict judges the acknowledged ones lost.
func writeSoakOutcome(w io.Writer, r *bench.SoakResult) {
	o := r.Outcome
	fmt.Fprintf(w, "What became of every message written, each counted once by the end of the load (the counts add up to those written). "+
		"Acked lost: acknowledged (SERVER_ACK), never read by the recipient: the verdict allows none. "+
		"Late: read after the %v grace. Refused: answered with an ERROR_NOTIFICATION (503 is pushback), never read; "+
		"unanswered: neither acknowledged nor refused, never read; the client sends both again.\n\n", r.Config.Grace)
	fmt.Fprintf(w, "| written | delivered in time | late | **acked lost** | refused | unanswered |\n|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| %d | %d | %d | %d | %d | %d |\n\n", r.Phase.Sent, o.Delivered, o.Late, o.AckedLost, o.Refused, o.Unanswered)
}

// closes formats the server's closes by kind, most frequent first ("none" when none).
func closes(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", m[k], k)
	}
	return strings.Join(parts, "; ")
}

func writeSoakChecks(w io.Writer, r *bench.SoakResult) {
	fmt.Fprintf(w, "### Processes\n\nBase: the floor just after the warm-up; end: the floor at the end; max: the highest sample after the warm-up; slope: least squares over the samples after the warm-up, per hour.\n\n")
	if r.Rest != nil {
		fmt.Fprintf(w, "At rest: the sample before the load (connections open, warm-up over) and the one %v after the drain (the same connections open, idle): goroutines and open files should be back.\n\n", r.Config.Rest)
	}
	fmt.Fprintf(w, "| process | role | RSS MiB base → end (max) | RSS slope MiB/h | goroutines base → end (max) | open files base → end (max) | threads base → end | at rest: goroutines, open files before → after | flat |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for i, p := range r.Config.Procs {
		if i >= len(r.Checks) {
			break
		}
		cs := r.Checks[i]
		get := func(f soak.Figure) soak.Check {
			for _, c := range cs {
				if c.Figure == f {
					return c
				}
			}
			return soak.Check{Figure: f}
		}
		rss, g, fd, th := get(soak.FigRSS), get(soak.FigGoroutines), get(soak.FigOpenFiles), get(soak.FigThreads)
		flat := "(not judged)"
		if p.Role == soak.Server {
			flat = "yes"
			if !soak.Flat(cs) {
				var bad []string
				for _, c := range cs {
					if c.Figure.Judged() && !c.Flat {
						bad = append(bad, string(c.Figure)+map[bool]string{true: " grows", false: " unknown"}[c.Known])
					}
				}
				flat = "**no**: " + strings.Join(bad, ", ")
			}
		}
		mib := func(v float64) string { return fmt.Sprintf("%.1f", v/(1<<20)) }
		num := func(v float64) string { return fmt.Sprintf("%.0f", v) }
		rest := ""
		if r.Rest != nil && len(r.Rows) > 0 && i < len(r.Rest.Samples) {
			b, a := r.Rows[0].Samples[i], r.Rest.Samples[i]
			rest = fmt.Sprintf("%s → %s, %s → %s", count(b.Goroutines), count(a.Goroutines), count(b.FDs), count(a.FDs))
		}
		fmt.Fprintf(w, "| %s (pid %d) | %s | %s | %s | %s | %s | %s | %s | %s |\n", p.Name, p.PID, p.Role,
			span(rss, mib, true), cond(rss.Known, func() string { return fmt.Sprintf("%+.1f", rss.PerHour/(1<<20)) }),
			span(g, num, true), span(fd, num, true), span(th, num, false), rest, flat)
	}
	fmt.Fprintln(w)
}

// span formats "base → end (max)", or "—" when the figure is unknown.
func span(c soak.Check, f func(float64) string, withMax bool) string {
	if !c.Known {
		return "—"
	}
	s := f(c.Base) + " → " + f(c.End)
	if withMax {
		s += " (" + f(c.Max) + ")"
	}
	return s
}

// tableEvery picks the spacing of the rows over time: about ten rows, on samples.
func tableEvery(c bench.SoakConfig) time.Duration {
	every := (c.Duration / 10).Truncate(c.Interval)
	return max(every, c.Interval)
}

// overTime returns the rows shown over time: the first sample of each tableEvery step,
// and the last.
func overTime(r *bench.SoakResult) []bench.SoakRow {
	every := tableEvery(r.Config)
	var out []bench.SoakRow
	next := time.Duration(0)
	for i, row := range r.Rows {
		last := i == len(r.Rows)-1
		if row.At+r.Config.Interval/2 >= next || last {
			out = append(out, row)
			for next <= row.At+r.Config.Interval/2 {
				next += every
			}
		}
	}
	return out
}

func writeSoakOverTime(w io.Writer, r *bench.SoakResult) {
	rows := overTime(r)
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "### Over time\n\nOne row every %v of load (counts since the load began; latency of the live deliveries since the previous sample).\n\n", tableEvery(r.Config))
	fmt.Fprintf(w, "| t | sent | delivered | replayed | in flight | duplicates | reconnections | p50 ms | p99 ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range rows {
		t := row.Traffic
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", clock(row.At), t.Sent, t.Delivered, t.Replayed, t.Sent-t.Delivered, t.Dups, t.Reconnects,
			cond(t.Window > 0, func() string { return ms(t.P50) }), cond(t.Window > 0, func() string { return ms(t.P99) }))
	}
	fmt.Fprintln(w)
	for _, fig := range []struct {
		title string
		value func(s soak.Sample) string
	}{
		{"RSS MiB", func(s soak.Sample) string {
			return known(s.RSS >= 0, func() string { return fmt.Sprintf("%.1f", float64(s.RSS)/(1<<20)) })
		}},
		{"goroutines", func(s soak.Sample) string {
			return known(s.Goroutines >= 0, func() string { return fmt.Sprint(s.Goroutines) })
		}},
		{"open files", func(s soak.Sample) string { return known(s.FDs >= 0, func() string { return fmt.Sprint(s.FDs) }) }},
	} {
		fmt.Fprintf(w, "%s:\n\n| t |", fig.title)
		for _, p := range r.Config.Procs {
			fmt.Fprintf(w, " %s |", p.Name)
		}
		fmt.Fprintf(w, "\n|---:|%s\n", strings.Repeat("---:|", len(r.Config.Procs)))
		for _, row := range rows {
			fmt.Fprintf(w, "| %s |", clock(row.At))
			for _, s := range row.Samples {
				fmt.Fprintf(w, " %s |", fig.value(s))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
}

// count formats a figure that may be unknown (-1).
func count(n int) string {
	if n < 0 {
		return "—"
	}
	return fmt.Sprint(n)
}

func known(ok bool, f func() string) string {
	if !ok {
		return "—"
	}
	return f()
}

// clock formats a time since the load began as m:ss.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
