package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	rex, loc := make([][]float64, len(ops)), make([][]float64, len(ops))
	for i := range b.runs {
		for j, o := range ops {
			// Alternate which goes first, so warm-up favours neither.
			first, second := plugin, "local"
			if i%2 == 1 {
				first, second = second, first
			}
			for _, drv := range []string{first, second} {
				vol := fmt.Sprintf("%s-%d", map[string]string{plugin: "rb", "local": "lb"}[drv], i)
				d, err := docker(o.args(drv, vol)...)
				if err != nil {
					return err
				}
				if drv == plugin {
					rex[j] = append(rex[j], ms(d))
				} else {
					loc[j] = append(loc[j], ms(d))
				}
			}
		}
	}
	for j, o := range ops {
		f := b.rep.pair("3 docker", o.name+", rexray", o.name+", local", "ms", rex[j], loc[j])
		if strings.HasPrefix(o.name, "docker run") {
			f.Target = "<= 1.1x"
		}
	}
	return nil
}

func runArgs(_, vol string) []string {
	return []string{"run", "--rm", "--network", "none", "-v", vol + ":/data", "busybox", "true"}
}
