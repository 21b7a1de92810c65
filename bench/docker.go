package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// dockerd is a throwaway dockerd of the benchmark's own, with the busybox
// image imported.
type dockerd struct {
	b    *bench
	dir  string
	host string
}

func (b *bench) startDockerd(name string) (*dockerd, error) {
	d := &dockerd{b: b, dir: filepath.Join(b.scratch(name), "d")}
	out, err := run(b.ctx, filepath.Join(b.repo, "hack", "dockerd-start.sh"), d.dir)
	if err != nil {
		d.stop()
		return nil, err
	}
	lines := strings.Split(out, "\n")
	d.host = lines[len(lines)-1]
	cmd := exec.Command(filepath.Join(b.repo, "hack", "import-busybox.sh"))
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host)
	if out, err := cmd.CombinedOutput(); err != nil {
		d.stop()
		return nil, fmt.Errorf("import busybox: %w: %s", err, out)
	}
	return d, nil
}

func (d *dockerd) stop() {
	run(d.b.ctx, filepath.Join(d.b.repo, "hack", "dockerd-stop.sh"), d.dir)
}

// docker runs one docker command and returns how long it took.
func (d *dockerd) docker(args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(d.b.ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return time.Since(start), nil
}

// dockerOp is one user command, for a driver and a volume, with the
// driver's create options.
type dockerOp struct {
	name string
	args func(driver, vol string, opts map[string]string) []string
}

var dockerOps = []dockerOp{
	{"docker volume create", func(d, v string, o map[string]string) []string {
		args := []string{"volume", "create", "-d", d}
		for k, val := range o {
			args = append(args, "-o", k+"="+val)
		}
		return append(args, v)
	}},
	{"docker run --rm -v vol:/data busybox true (first)", runArgs},
	{"docker run --rm -v vol:/data busybox true (again)", runArgs},
	{"docker volume ls", func(d, _ string, _ map[string]string) []string {
		return []string{"volume", "ls", "-q", "--filter", "driver=" + d}
	}},
}

func runArgs(_, vol string, _ map[string]string) []string {
	return []string{"run", "--rm", "--network", "none", "-v", vol + ":/data", "busybox", "true"}
}

// dockerOps is section 3: the user's commands through a real dockerd, each
// against the same command on Docker's local driver, run alternately.
func (b *bench) dockerOps() error {
	d, err := b.startDockerd("docker")
	if err != nil {
		return err
	}
	defer d.stop()
	const plugin = "rexray/loopback:bench"
	store, state := b.scratch("docker/store"), b.scratch("docker/state")
	setup := [][]string{
		{"plugin", "create", plugin, filepath.Join(b.repo, "build", "plugin")},
		{"plugin", "set", plugin, "store.source=" + store, "state.source=" + state},
		{"plugin", "enable", plugin},
	}
	for _, s := range setup {
		if _, err := d.docker(s...); err != nil {
			return err
		}
	}
	defer d.docker("plugin", "disable", "-f", plugin)
	sides := []dockerSide{{driver: plugin}, {driver: "local"}}
	res, err := d.alternate(sides, "b")
	if err != nil {
		return err
	}
	for j, o := range dockerOps {
		f := b.rep.outcomes("3 docker", o.name, "local", res[j])
		if strings.HasPrefix(o.name, "docker run") {
			f.Target = "<= 1.02x"
		}
	}
	return nil
}

// dockerSide is a driver in an alternating docker run: its name for
// `docker volume create -d`, its create options, and whether it is a peer
// (whose failures are reported, not fatal).
type dockerSide struct {
	driver string
	opts   map[string]string
	peer   bool
}

// alternate runs dockerOps b.dockerRuns times on the two sides, one
// command on one and then on the other, which goes first alternating.
// A peer's failure skips the rest of its round; rexray's ends the run.
// The volumes are removed after, whatever happened.
func (d *dockerd) alternate(sides []dockerSide, prefix string) ([]series, error) {
	res := make([]series, len(dockerOps))
	vol := func(side, i int) string { return fmt.Sprintf("%s%d-%d", prefix, side, i) }
	defer func() {
		for side := range sides {
			for i := range d.b.dockerRuns {
				d.docker("volume", "rm", "-f", vol(side, i))
			}
		}
	}()
	for i := range d.b.dockerRuns {
		var broken [2]error
		var brokeAt [2]string
		for j, o := range dockerOps {
			for k := range 2 {
				side := (i + j + k) % 2
				s := sides[side]
				if broken[side] != nil {
					res[j][side] = append(res[j][side], outcome{err: skipped(brokeAt[side])})
					continue
				}
				t, err := d.docker(o.args(s.driver, vol(side, i), s.opts)...)
				if err != nil && !s.peer {
					return nil, err
				}
				if err != nil {
					broken[side], brokeAt[side] = err, o.name
				}
				res[j][side] = append(res[j][side], outcome{ms: ms(t), err: err})
			}
		}
	}
	return res, nil
}

// peerDocker is section 6's docker commands: rexray in host mode, found by
// dockerd through its socket in /run/docker/plugins as the peer is, with
// the same volume, against the peer.
func (b *bench) peerDocker(peer string, opts map[string]string) error {
	d, err := b.startDockerd("peer-docker")
	if err != nil {
		return err
	}
	defer d.stop()
	name := fmt.Sprintf("rxbench%d", os.Getpid())
	sock := filepath.Join("/run/docker/plugins", name+".sock")
	rx, err := startPluginAt(b.ctx, b.binary, b.scratch("peer-docker/rexray"), sock)
	if err != nil {
		return err
	}
	defer rx.stop()
	sides := []dockerSide{{driver: name, opts: sameVolume(opts)}, {driver: peer, opts: opts, peer: true}}
	res, err := d.alternate(sides, "p")
	if err != nil {
		return err
	}
	for j, o := range dockerOps {
		b.rep.outcomes("6 peer", o.name, "peer "+peer, res[j])
	}
	return nil
}
