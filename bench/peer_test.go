package main

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseOpts(t *testing.T) {
	got, err := parseOpts("size=1GiB, sparse=true,fs=ext4")
	want := map[string]string{"size": "1GiB", "sparse": "true", "fs": "ext4"}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("parseOpts = %v, %v; want %v", got, err, want)
	}
	if got, err := parseOpts(""); err != nil || len(got) != 0 {
		t.Errorf("parseOpts of nothing = %v, %v; want no options", got, err)
	}
	if got, err := parseOpts("remote=:local:/tmp/x=y"); err != nil || got["remote"] != ":local:/tmp/x=y" {
		t.Errorf("a value with = in it: %v, %v", got, err)
	}
	for in, named := range map[string]string{
		"size":             `"size"`,
		"=1GiB":            `"=1GiB"`,
		"size=1,,fs=ext4":  `""`,
		"fs=ext4,fs=xfs":   `"fs" is given twice`,
		"size=,size=1GiB ": `"size" is given twice`,
	} {
		_, err := parseOpts(in)
		if err == nil || !strings.Contains(err.Error(), named) {
			t.Errorf("parseOpts(%q) = %v; want an error naming %s", in, err, named)
		}
	}
}

func TestSameVolume(t *testing.T) {
	for _, c := range []struct {
		peer map[string]string
		want map[string]string
	}{
		{map[string]string{"size": "1GiB", "sparse": "true", "fs": "ext4"}, map[string]string{"size": "1GiB", "newfstype": "ext4"}},
		{map[string]string{"size": "200MiB", "fs": "xfs", "uid": "1000", "gid": "1000", "mode": "0750"},
			map[string]string{"size": "200MiB", "newfstype": "xfs", "uid": "1000", "gid": "1000", "mode": "0750"}},
		{map[string]string{"type": "local"}, map[string]string{"size": "1GiB", "newfstype": "ext4"}},
		{nil, map[string]string{"size": "1GiB", "newfstype": "ext4"}},
	} {
		if got := sameVolume(c.peer); !maps.Equal(got, c.want) {
			t.Errorf("sameVolume(%v) = %v; want %v", c.peer, got, c.want)
		}
	}
}

func TestOutcomesReportAPeersFailure(t *testing.T) {
	boom := errors.New("Create v: mkfs.ext4 not found")
	s := series{
		{{ms: 2}, {ms: 3}, {ms: 4}},
		{{ms: 4}, {err: boom}, {ms: 8}},
	}
	r := &report{}
	f := r.outcomes("6 peer", "Create", "peer dvl", s)
	if f == nil || len(f.Samples) != 2 || f.Ratio != 0.5 {
		t.Fatalf("figure over the rounds both passed = %+v; want 2 samples, ratio 0.5", f)
	}
	var failed *figure
	for _, g := range r.Figures {
		if g.Failed != "" {
			failed = g
		}
	}
	if failed == nil {
		t.Fatalf("no failure row among %d figures", len(r.Figures))
	}
	row := failed.row()
	for _, want := range []string{"Create, peer dvl", "FAILED", "1 of 3 failed", "mkfs.ext4 not found"} {
		if !strings.Contains(row, want) {
			t.Errorf("failure row %q lacks %q", row, want)
		}
	}
	var out strings.Builder
	r.table(&out) // must not stop at the failure
	if !strings.Contains(out.String(), "FAILED") || !strings.Contains(out.String(), "Create, rexray") {
		t.Errorf("table lacks the failure or the figure:\n%s", out.String())
	}
}

func TestOutcomesAllFailedNamesTheRealError(t *testing.T) {
	boom := errors.New("Mount v: no such volume")
	s := series{
		{{ms: 2}, {ms: 3}},
		{{err: skipped("Create")}, {err: boom}},
	}
	r := &report{}
	r.outcomes("6 peer", "re-Mount", "peer dvl", s)
	if len(r.Figures) != 1 || !strings.Contains(r.Figures[0].Failed, "2 of 2 failed: Mount v: no such volume") {
		t.Fatalf("figures = %+v; want one failure row naming the error, not the skip", r.Figures)
	}
}

func TestSkippedNamesWhatFailed(t *testing.T) {
	err := skipped("first Mount")
	if !errors.Is(err, errSkipped) || !strings.Contains(err.Error(), "first Mount failed") {
		t.Errorf("skipped = %v; want errSkipped naming the step that failed", err)
	}
}

func TestSumSeries(t *testing.T) {
	boom := errors.New("boom")
	got := sumSeries(
		series{{{ms: 1}, {ms: 2}}, {{ms: 10}, {ms: 20}}},
		series{{{ms: 3}, {ms: 4}}, {{ms: 30}, {err: boom}}},
	)
	if got[0][0].ms != 4 || got[0][1].ms != 6 || got[1][0].ms != 40 || !errors.Is(got[1][1].err, boom) {
		t.Errorf("sumSeries = %+v", got)
	}
}
