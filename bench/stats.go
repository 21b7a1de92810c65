package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"
)

// figure is one measured quantity over repeated runs.
type figure struct {
	Section string    `json:"section"`
	Name    string    `json:"name"`
	Unit    string    `json:"unit"` // "ms", "MB", "MB/s", "count"
	Samples []float64 `json:"samples"`
	Min     float64   `json:"min"`
	Median  float64   `json:"median"`
	Max     float64   `json:"max"`
	// Baseline names the figure this one is compared with, run pair by
	// pair in the same session; Ratio is the median of the pairwise ratios,
	// and the true median lies between RatioLow and RatioHigh with 95%
	// confidence (bootstrap): a target inside that range is within noise.
	Baseline  string  `json:"baseline,omitempty"`
	Ratio     float64 `json:"ratio,omitempty"`
	RatioLow  float64 `json:"ratio_low,omitempty"`
	RatioHigh float64 `json:"ratio_high,omitempty"`
	Target    string  `json:"target,omitempty"`
	Note      string  `json:"note,omitempty"`
	// Failed says why the figure could not be measured (a peer's call
	// failed): its row says so instead of giving numbers.
	Failed string `json:"failed,omitempty"`
}

// report collects figures in the order they were measured.
type report struct {
	Commit  string            `json:"commit"`
	Machine map[string]string `json:"machine"`
	Started time.Time         `json:"started"`
	Figures []*figure         `json:"figures"`
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (r *report) add(section, name, unit string, samples []float64) *figure {
	f := &figure{Section: section, Name: name, Unit: unit, Samples: samples,
		Min: slices.Min(samples), Median: median(samples), Max: slices.Max(samples)}
	r.Figures = append(r.Figures, f)
	return f
}

// pair records a figure and its baseline measured alternately, and the
// median of their per-run ratios, so drift on a shared machine cancels.
func (r *report) pair(section, name, baseName, unit string, xs, base []float64) *figure {
	b := r.add(section, baseName, unit, base)
	b.Note = "baseline"
	f := r.add(section, name, unit, xs)
	ratios := make([]float64, len(xs))
	for i := range xs {
		ratios[i] = xs[i] / base[i]
	}
	f.Baseline, f.Ratio = baseName, median(ratios)
	f.RatioLow, f.RatioHigh = medianInterval(ratios)
	return f
}

// medianInterval is the 95% bootstrap interval of the median of xs. The
// generator is seeded, so a report is reproducible from its samples.
func medianInterval(xs []float64) (lo, hi float64) {
	const resamples = 2000
	rng := rand.New(rand.NewPCG(1, uint64(len(xs))))
	meds := make([]float64, resamples)
	s := make([]float64, len(xs))
	for i := range meds {
		for j := range s {
			s[j] = xs[rng.IntN(len(xs))]
		}
		meds[i] = median(s)
	}
	slices.Sort(meds)
	return meds[resamples*25/1000], meds[resamples*975/1000-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *report) table(w io.Writer) {
	fmt.Fprintf(w, "rexray benchmark  commit %s  %s\n\n", r.Commit, r.Machine["cpu"])
	fmt.Fprintf(w, "%-10s %-64s %10s %10s %10s %-5s %7s %-11s  %s\n", "section", "figure", "min", "median", "max", "unit", "ratio", "95% range", "target")
	for _, f := range r.Figures {
		fmt.Fprintln(w, f.row())
	}
}

// row is the figure's line of the table.
func (f *figure) row() string {
	if f.Failed != "" {
		return fmt.Sprintf("%-10s %-64s %10s %10s %10s %-5s  FAILED: %s", f.Section, trunc(f.Name, 64), "-", "-", "-", "", f.Failed)
	}
	ratio, within := "", ""
	if f.Ratio != 0 {
		ratio = fmt.Sprintf("%.2fx", f.Ratio)
		within = fmt.Sprintf("%.2f-%.2f", f.RatioLow, f.RatioHigh)
	}
	return strings.TrimRight(fmt.Sprintf("%-10s %-64s %10.2f %10.2f %10.2f %-5s %7s %-11s  %s", f.Section, trunc(f.Name, 64), f.Min, f.Median, f.Max, f.Unit, ratio, within, f.Target), " ")
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func machine() map[string]string {
	m := map[string]string{}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	m["cores"] = fmt.Sprint(numCPU())
	return m
}
