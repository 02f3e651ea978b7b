package telemetrytest

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a /metrics handler, parsed by expfmt into its samples, named
// as the text format names them: a counter's name ends in _total, a histogram's samples are
// name_bucket, name_sum and name_count.
type Metrics struct {
	samples []sample
}

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// Scrape gets h's /metrics and checks it is Prometheus text.
func Scrape(tb testing.TB, h http.Handler) Metrics {
	tb.Helper()
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rw.Code != http.StatusOK {
		tb.Fatalf("scrape: status %d: %s", rw.Code, rw.Body)
	}
	if ct := rw.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Fatalf("scrape: content type %q, want text/plain", ct)
	}
	m, err := Parse(rw.Body.String())
	if err != nil {
		tb.Fatalf("scrape: %v", err)
	}
	return m
}

// Parse reads a Prometheus text exposition; an exposition expfmt refuses is an error.
func Parse(text string) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return Metrics{}, fmt.Errorf("parse metrics: %w", err)
	}
	var m Metrics
	for name, f := range families {
		for _, x := range f.GetMetric() {
			labels := make(map[string]string, len(x.GetLabel()))
			for _, l := range x.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			m.samples = append(m.samples, flatten(name, f.GetType(), x, labels)...)
		}
	}
	slices.SortFunc(m.samples, func(a, b sample) int { return strings.Compare(a.String(), b.String()) })
	return m, nil
}

// flatten turns one metric of a family into its text-format samples.
func flatten(name string, typ dto.MetricType, x *dto.Metric, labels map[string]string) []sample {
	with := func(k, v string) map[string]string {
		l := make(map[string]string, len(labels)+1)
		for kk, vv := range labels {
			l[kk] = vv
		}
		l[k] = v
		return l
	}
	switch typ {
	case dto.MetricType_COUNTER:
		return []sample{{name, labels, x.GetCounter().GetValue()}}
	case dto.MetricType_GAUGE:
		return []sample{{name, labels, x.GetGauge().GetValue()}}
	case dto.MetricType_HISTOGRAM:
		h := x.GetHistogram()
		out := []sample{{name + "_count", labels, float64(h.GetSampleCount())}, {name + "_sum", labels, h.GetSampleSum()}}
		for _, b := range h.GetBucket() {
			out = append(out, sample{name + "_bucket", with("le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)), float64(b.GetCumulativeCount())})
		}
		return append(out, sample{name + "_bucket", with("le", "+Inf"), float64(h.GetSampleCount())})
	case dto.MetricType_SUMMARY:
		s := x.GetSummary()
		out := []sample{{name + "_count", labels, float64(s.GetSampleCount())}, {name + "_sum", labels, s.GetSampleSum()}}
		for _, q := range s.GetQuantile() {
			out = append(out, sample{name, with("quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)), q.GetValue()})
		}
		return out
	}
	return []sample{{name, labels, x.GetUntyped().GetValue()}}
}

// String writes the sample as the text format does (labels sorted).
func (s sample) String() string {
	keys := make([]string, 0, len(s.labels))
	for k := range s.labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(s.name)
	if len(keys) > 0 {
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(k + "=" + strconv.Quote(s.labels[k]))
		}
		b.WriteByte('}')
	}
	b.WriteString(" " + strconv.FormatFloat(s.value, 'g', -1, 64))
	return b.String()
}

// match reports whether s is a sample of name carrying all of labels (each written as
// in the exposition: name="value").
func (s sample) match(name string, labels []string) bool {
	if s.name != name {
		return false
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return false
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		if got, ok := s.labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Sum adds the values of the samples of name that carry all of labels (name="value").
func (m Metrics) Sum(name string, labels ...string) float64 {
	var total float64
	for _, s := range m.samples {
		if s.match(name, labels) && !math.IsNaN(s.value) {
			total += s.value
		}
	}
	return total
}

// Has reports whether a sample of name with all of labels is present.
func (m Metrics) Has(name string, labels ...string) bool {
	for _, s := range m.samples {
		if s.match(name, labels) {
			return true
		}
	}
	return false
}

// Count returns how many samples of name carry all of labels (how many series).
func (m Metrics) Count(name string, labels ...string) int {
	n := 0
	for _, s := range m.samples {
		if s.match(name, labels) {
			n++
		}
	}
	return n
}

// Grep returns the samples of name, one a line, for failure messages.
func (m Metrics) Grep(name string) string {
	var b strings.Builder
	for _, s := range m.samples {
		if s.match(name, nil) {
			b.WriteString(s.String() + "\n")
		}
	}
	return b.String()
}

// String returns every sample, one a line.
func (m Metrics) String() string {
	var b strings.Builder
	for _, s := range m.samples {
		b.WriteString(s.String() + "\n")
	}
	return b.String()
}
