// Command bench measures rexray at the plugin socket, through a real
// dockerd, under concurrency and on the data path, each figure next to a
// baseline measured in the same run. It prints a table and writes JSON.
//
//	go run ./bench -binary bin/rexray -out bench.json
//
// It needs root, build/plugin (make plugin) and the tools make setup installs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

func main() {
	binary := flag.String("binary", "bin/rexray", "rexray binary, run in host mode")
	out := flag.String("out", "bench.json", "JSON report")
	runs := flag.Int("runs", 5, "repetitions of each timed step")
	dockerRuns := flag.Int("docker-runs", 30, "repetitions of each docker command (section 3): one varies by tens of ms")
	only := flag.String("sections", "1,2,3,4,5,6,7,8,9", "sections to run, by number, separated by commas")
	startupVolumes := flag.Int("startup-volumes", 10000, "volumes in the store of section 9")
	startupMounted := flag.Int("startup-mounted", 100, "volumes of section 9 mounted for containers")
	flag.Parse()
	if *startupMounted < 1 || *startupMounted > *startupVolumes {
		fmt.Fprintln(os.Stderr, "bench: -startup-mounted must be between 1 and -startup-volumes")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	b := &bench{ctx: ctx, binary: *binary, runs: *runs, dockerRuns: *dockerRuns,
		startupVolumes: *startupVolumes, startupMounted: *startupMounted}
	if err := b.benchmark(*out, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (b *bench) benchmark(out, only string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: loop devices, mounts, dockerd")
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("/tmp", "rxbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	commit, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
	b.repo, b.dir = repo, dir
	b.rep = &report{Commit: strings.TrimSpace(string(commit)), Machine: machine(), Started: time.Now().UTC()}

	sections := []struct {
		id  string
		run func() error
	}{
		{"1", func() error { return b.withPlugin(func(p *pluginProc) error { return b.socketOps(p) }) }},
		{"2", b.scale},
		{"3", b.dockerOps},
		{"4", b.concurrency},
		{"5", b.dataPath},
		{"6", b.peer},
		{"7", func() error { return b.withPlugin(b.csiOps) }},
		{"8", b.metricsOverhead},
		{"9", b.startup},
	}
	for _, s := range sections {
		if !strings.Contains(only, s.id) {
			continue
		}
		// Each section starts on a quiet machine: the last one's writes
		// flushed and its page cache dropped.
		syscall.Sync()
		if err := dropCaches(); err != nil {
			return err
		}
		start := time.Now()
		if err := s.run(); err != nil {
			return fmt.Errorf("section %s: %w", s.id, err)
		}
		fmt.Fprintf(os.Stderr, "bench: section %s done in %s\n", s.id, time.Since(start).Round(time.Millisecond))
	}
	b.rep.table(os.Stdout)
	return b.rep.writeJSON(out)
}

func (b *bench) withPlugin(f func(*pluginProc) error) error {
	p, err := startPlugin(b.ctx, b.binary, b.scratch("socket"))
	if err != nil {
		return err
	}
	defer p.stop()
	return f(p)
}
