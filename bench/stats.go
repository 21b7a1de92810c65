package main

import (
	"encoding/json"
	"fmt"
	"io"
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
	// pair in the same session; Ratio is the median of the pairwise ratios.
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Note     string  `json:"note,omitempty"`
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
	return f
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *report) table(w io.Writer) {
	fmt.Fprintf(w, "rexray benchmark  commit %s  %s\n\n", r.Commit, r.Machine["cpu"])
	fmt.Fprintf(w, "%-10s %-52s %10s %10s %10s %-5s %7s  %s\n", "section", "figure", "min", "median", "max", "unit", "ratio", "target")
	for _, f := range r.Figures {
		ratio := ""
		if f.Ratio != 0 {
			ratio = fmt.Sprintf("%.2fx", f.Ratio)
		}
		fmt.Fprintf(w, "%-10s %-52s %10.2f %10.2f %10.2f %-5s %7s  %s\n", f.Section, trunc(f.Name, 52), f.Min, f.Median, f.Max, f.Unit, ratio, f.Target)
	}
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
