//go:build integration && vmrbd

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestVMRBDAttach: the rbd driver's kernel attach paths, which this host's
// kernel lacks, for real in a VM of Debian's kernel (hack/vm.sh) against a
// single-node Ceph on the project's test network. In the VM rexray serves
// with RBD_ATTACH=auto (which must pick krbd, the module being there), then
// nbd, and hack/vm-rbd-attach.sh walks a volume through create, attach,
// mkfs, write, remount and read, snapshot and clone. The second host is
// this one: rexray with rbd-fuse, reached over TCP, which preempts the
// volume the VM holds. The VM's later writes must fail, and this host must
// read every line the VM synced before, and nothing after.
func TestVMRBDAttach(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "rexray-vmrbd-") // the VM's /tmp is its own
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ns := fmt.Sprintf("rxrbdvm%d", os.Getpid())
	const bridge, vmIP = "10.213.78.1", "10.213.78.2/24"
	testNetwork(t, ns, bridge+"/24")

	cephDir := filepath.Join(dir, "ceph")
	t.Cleanup(func() {
		if _, err := suite.hack("ceph-down.sh", cephDir); err != nil {
			t.Errorf("ceph-down: %v", err)
		}
	})
	start := time.Now()
	up := exec.Command("ip", "netns", "exec", ns, filepath.Join(suite.repo, "hack", "ceph-up.sh"), cephDir)
	up.Env = append(os.Environ(), "CEPH_ADDR="+bridge)
	up.Stderr = os.Stderr
	if err := up.Run(); err != nil {
		t.Fatalf("ceph-up on %s: %v", bridge, err)
	}
	t.Logf("timing: Ceph cluster up in %s", time.Since(start).Round(time.Millisecond))
	r := &rbdEnv{dir: cephDir, conf: filepath.Join(cephDir, "ceph.conf")}

	peer := startRBDPeer(t, ns, filepath.Join(dir, "host"), r.conf, "tcp://"+bridge+":7979")
	for _, c := range []struct{ method, want, dev string }{
		{"auto", "krbd", "/dev/rbd"},
		{"nbd", "nbd", "/dev/nbd"},
	} {
		t.Run(c.method, func(t *testing.T) {
			vol := "vm" + c.method
			out, code := vm(t, []string{"--net", ns, "--ip", vmIP},
				filepath.Join(suite.repo, "hack", "vm-rbd-attach.sh"), c.method, r.conf, peer.host, vol)
			got := parseWalk(out)
			for _, s := range got.steps {
				t.Logf("timing: %s %s in the VM: %s ms", c.want, s[0], s[1])
			}
			for _, r := range got.runs {
				t.Logf("tool runs: %s %s", c.want, r)
			}
			if code != 0 {
				t.Fatalf("hack/vm-rbd-attach.sh %s exited %d:\n%s", c.method, code, out)
			}
			if got.one["method"] != c.want || !strings.HasPrefix(got.one["device"], c.dev) {
				t.Errorf("RBD_ATTACH=%s attached with %q as %q, want %s on a %sN", c.method, got.one["method"], got.one["device"], c.want, c.dev)
			}
			if got.one["read"] != "line 100" || got.one["clone-read"] != "line 100" {
				t.Errorf("read back after a remount %q, from the clone of its snapshot %q; want line 100 in both", got.one["read"], got.one["clone-read"])
			}
			if _, ok := got.one["fenced"]; !ok {
				t.Errorf("the VM's write after the takeover did not fail:\n%s", out)
			}
			synced, err := strconv.Atoi(got.one["synced"])
			if err != nil || synced < 1 {
				t.Fatalf("the VM synced %q lines before the takeover, want some:\n%s", got.one["synced"], out)
			}
			// This host holds the volume now: exactly the lines the VM saw synced.
			b, err := os.ReadFile(filepath.Join(got.one["peer-mount"], "fenced"))
			var want strings.Builder
			for i := 1; i <= synced; i++ {
				fmt.Fprintf(&want, "synced %d\n", i)
			}
			if err != nil || string(b) != want.String() {
				t.Errorf("the new holder reads %q, %v; want the %d lines the VM synced, and nothing after", b, err, synced)
			}
			for _, args := range [][]string{
				{"volume", "unmount", vol}, {"volume", "rm", vol + "-c"}, {"snapshot", "rm", vol + "-s"}, {"volume", "rm", vol},
			} {
				start := time.Now()
				if out, err := peer.rexray(args...); err != nil {
					t.Errorf("on this host: %v\n%s", err, out)
				}
				t.Logf("timing: rbd-fuse %s on this host: %d ms", strings.Join(args[:2], " "), time.Since(start).Milliseconds())
			}
			// The cluster is on the test network: the tool runs there.
			left, err := exec.Command("ip", "netns", "exec", ns, "rbd", "-c", r.conf, "ls", "-l", "rbd").Output()
			if err != nil || strings.TrimSpace(string(left)) != "" {
				t.Errorf("images left in the pool: %q, %v", left, err)
			}
		})
	}
}

// walk is what hack/vm-rbd-attach.sh printed: its steps with their ms,
// the tool runs of each call, and the other lines by their first word.
type walk struct {
	steps [][2]string
	runs  []string
	one   map[string]string
}

func parseWalk(out string) walk {
	w := walk{one: map[string]string{}}
	for _, l := range strings.Split(out, "\n") {
		key, rest, _ := strings.Cut(strings.TrimSpace(l), " ")
		if f := strings.Fields(rest); key == "step" && len(f) == 2 {
			w.steps = append(w.steps, [2]string{f[0], f[1]})
		} else if key == "runs" {
			w.runs = append(w.runs, rest)
		} else if key != "" {
			w.one[key] = rest
		}
	}
	return w
}

// testNetwork makes the network namespace ns with a bridge at addr, and
// removes it (and whatever is left in it) at the test's end.
func testNetwork(t *testing.T, ns, addr string) {
	t.Helper()
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "add", "br0", "type", "bridge"},
		{"-n", ns, "addr", "add", addr, "dev", "br0"},
		{"-n", ns, "link", "set", "br0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// rbdPeer is rexray in host mode on this host with the rbd driver and
// rbd-fuse, in the test network's namespace (its mounts in this one),
// serving plain TCP, preempting.
type rbdPeer struct {
	dir, host, ns string
	env           []string
	cmd           *exec.Cmd
}

func startRBDPeer(t *testing.T, ns, dir, conf, host string) *rbdPeer {
	t.Helper()
	p := &rbdPeer{dir: dir, host: host, ns: ns}
	p.env = append(os.Environ(), "REXRAY_HOST="+host, "REXRAY_HOST_INSECURE=true", "REXRAY_DRIVER=rbd",
		"RBD_CEPHARGS=-c "+conf)
	p.cmd = exec.Command("nsenter", "--net=/run/netns/"+ns, filepath.Join(suite.repo, "bin", "rexray"), "serve")
	p.cmd.Env = append(p.env, "RBD_ATTACH=fuse", "RBD_FUSEPATH="+filepath.Join(dir, "fuse"), "REXRAY_PREEMPT=true",
		"REXRAY_INSTANCEID=host", "REXRAY_STATEDIR="+filepath.Join(dir, "state"),
		"LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PATH="+filepath.Join(dir, "mnt"), "REXRAY_LOGLEVEL=info")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "rexray.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(t, logPath) })
	waitFor(t, "the host's rexray to listen", 20*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), " serving ")
	})
	return p
}

// rexray runs the operator CLI against the peer, on the test network.
func (p *rbdPeer) rexray(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + p.ns, filepath.Join(suite.repo, "bin", "rexray")}, args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stop ends the peer by its PID, then releases what a failure left under
// its folder: mounts, loop devices over rbd-fuse's files, and the rbd-fuse
// processes it started (each names its folder).
func (p *rbdPeer) stop(t *testing.T, logPath string) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	if t.Failed() {
		b, _ := os.ReadFile(logPath)
		t.Logf("host rexray log:\n%s", b)
	}
	for _, m := range mountsUnder(p.dir) {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	if out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output(); len(out) > 0 {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[1], p.dir+"/") {
				t.Errorf("loop device %s left over %s", f[0], f[1])
				exec.Command("losetup", "-d", f[0]).Run()
			}
		}
	}
	out, _ := exec.Command("pgrep", "-f", "rbd-fuse .*"+p.dir+"/").Output()
	for _, pid := range strings.Fields(string(out)) {
		t.Errorf("rbd-fuse %s left running", pid)
		if n, err := strconv.Atoi(pid); err == nil {
			syscall.Kill(n, syscall.SIGKILL)
		}
	}
}
