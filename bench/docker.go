package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// dockerOps is section 3: the user's commands through a real dockerd, each
// against the same command on Docker's local driver, run alternately.
func (b *bench) dockerOps() error {
	dir := b.scratch("docker")
	dockerDir := filepath.Join(dir, "d")
	out, err := run(b.ctx, filepath.Join(b.repo, "hack", "dockerd-start.sh"), dockerDir)
	defer run(b.ctx, filepath.Join(b.repo, "hack", "dockerd-stop.sh"), dockerDir)
	if err != nil {
		return err
	}
	lines := strings.Split(out, "\n")
	host := lines[len(lines)-1]
	docker := func(args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(b.ctx, "docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+host)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return time.Since(start), nil
	}
	const plugin = "rexray/loopback:bench"
	store, state := b.scratch("docker/store"), b.scratch("docker/state")
	setup := [][]string{
		{"plugin", "create", plugin, filepath.Join(b.repo, "build", "plugin")},
		{"plugin", "set", plugin, "store.source=" + store, "state.source=" + state},
		{"plugin", "enable", plugin},
	}
	for _, s := range setup {
		if _, err := docker(s...); err != nil {
			return err
		}
	}
	cmd := exec.Command(filepath.Join(b.repo, "hack", "import-busybox.sh"))
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+host)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("import busybox: %w: %s", err, out)
	}
	defer docker("plugin", "disable", "-f", plugin)

	type op struct {
		name string
		args func(driver, vol string) []string
	}
	ops := []op{
		{"docker volume create", func(d, v string) []string { return []string{"volume", "create", "-d", d, v} }},
		{"docker run --rm -v vol:/data busybox true (first)", runArgs},
		{"docker run --rm -v vol:/data busybox true (again)", runArgs},
		{"docker volume ls", func(d, v string) []string { return []string{"volume", "ls", "-q", "--filter", "driver=" + d} }},
	}
	// A peer plugin in host mode is found by dockerd through its socket in
	// /run/docker/plugins, under the socket's name.
	drivers := []string{plugin, "local"}
	if peer := os.Getenv("PEER_SOCKET"); filepath.Dir(peer) == "/run/docker/plugins" {
		drivers = append(drivers, strings.TrimSuffix(filepath.Base(peer), ".sock"))
	}
	// The volumes go with the scratch folder, but a peer's live in its store.
	defer func() {
		for k := range drivers {
			for i := range b.dockerRuns {
				docker("volume", "rm", "-f", fmt.Sprintf("b%d-%d", k, i))
			}
		}
	}()
	times := make(map[string][][]float64)
	for _, drv := range drivers {
		times[drv] = make([][]float64, len(ops))
	}
	for i := range b.dockerRuns {
		for j, o := range ops {
			// Rotate which goes first, so warm-up favours none.
			for k := range drivers {
				drv := drivers[(i+k)%len(drivers)]
				d, err := docker(o.args(drv, fmt.Sprintf("b%d-%d", slices.Index(drivers, drv), i))...)
				if err != nil {
					return err
				}
				times[drv][j] = append(times[drv][j], ms(d))
			}
		}
	}
	for j, o := range ops {
		f := b.rep.pair("3 docker", o.name+", rexray", o.name+", local", "ms", times[plugin][j], times["local"][j])
		if strings.HasPrefix(o.name, "docker run") {
			f.Target = "<= 1.1x"
		}
	}
	if len(drivers) == 3 {
		for j, o := range ops {
			b.rep.pair("6 peer", o.name+", peer "+drivers[2], o.name+", rexray", "ms", times[drivers[2]][j], times[plugin][j])
		}
	}
	return nil
}

func runArgs(_, vol string) []string {
	return []string{"run", "--rm", "--network", "none", "-v", vol + ":/data", "busybox", "true"}
}
