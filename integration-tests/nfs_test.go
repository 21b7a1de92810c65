//go:build integration

package integration

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestNFS: the loopback store on a real NFS export (nfsd in a VM) shared
// by two client VMs, each a host running rexray in host mode with its
// own instance ID, over NFSv4.2 and NFSv3 with their default options: what
// TestCluster proves on one kernel, across kernels that share only the
// network.
//
// NFS_VERSIONS (comma-separated, default 4.2,3) picks the versions.
func TestNFS(t *testing.T) {
	versions := map[string]struct{ opts, export string }{
		"4.2": {"vers=4.2", nfsServerIP + ":/"},
		"3":   {"vers=3", nfsServerIP + ":/tmp/export"},
	}
	picked := strings.Split(cmp.Or(os.Getenv("NFS_VERSIONS"), "4.2,3"), ",")
	for _, vers := range picked {
		if _, ok := versions[vers]; !ok {
			t.Fatalf("NFS_VERSIONS=%s: version %q is not one of 4.2 and 3", os.Getenv("NFS_VERSIONS"), vers)
		}
	}
	lab := startNFSLab(t)
	for _, vers := range picked {
		v := versions[vers]
		t.Run("NFSv"+vers, func(t *testing.T) { testNFSStore(t, lab, vers, v.opts, v.export) })
	}
}

const (
	nfsNet      = "10.213.79"
	nfsServerIP = nfsNet + ".1"
)

// nfsLab is the test network (a netns with a bridge) and the NFS server
// VM; client VMs come and go per test.
type nfsLab struct {
	ns, work string
	n        int // VMs started, for addresses and names
	srv      *nfsVM
}

func startNFSLab(t *testing.T) *nfsLab {
	work, err := os.MkdirTemp("/var/tmp", "rexray-nfs-") // a VM's /tmp is its own
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	lab := &nfsLab{ns: fmt.Sprintf("rxnfs%d", os.Getpid()), work: work}
	for _, args := range [][]string{
		{"netns", "add", lab.ns},
		{"-n", lab.ns, "link", "add", "br0", "type", "bridge"},
		{"-n", lab.ns, "link", "set", "br0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "netns", "del", lab.ns).Run()
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", lab.ns).Run() })
	lab.srv = lab.boot(t, nfsServerIP, "hack/vm-nfs-server.sh", nfsNet+".0/24", "DIR")
	lab.srv.await(t, "the NFS server", func() bool { return strings.Contains(lab.srv.output(), "nfs: serving") })
	return lab
}

// nfsVM is a hack/vm.sh process; its command gets DIR, its shared folder,
// for the argument "DIR".
type nfsVM struct {
	cmd  *exec.Cmd
	dir  string
	out  string // its output file
	done chan struct{}
	seq  int
}

func (lab *nfsLab) boot(t *testing.T, ip string, command ...string) *nfsVM {
	t.Helper()
	lab.n++
	v := &nfsVM{dir: filepath.Join(lab.work, fmt.Sprintf("vm%d", lab.n)), done: make(chan struct{})}
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, a := range command {
		command[i] = strings.ReplaceAll(a, "DIR", v.dir)
	}
	v.out = v.dir + ".log"
	log, err := os.Create(v.out)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	args := append([]string{"--net", lab.ns, "--ip", ip + "/24", "--cpus", "1", "--share", v.dir, "--"}, command...)
	v.cmd = exec.Command(filepath.Join(suite.repo, "hack", "vm.sh"), args...)
	v.cmd.Dir = suite.repo
	v.cmd.Stdout, v.cmd.Stderr = log, log
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.cmd.Wait(); close(v.done) }()
	t.Cleanup(func() { v.stop(t) })
	return v
}

// await waits for cond, failing at once if the VM stops first.
func (v *nfsVM) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, 3*time.Minute, func() bool {
		select {
		case <-v.done:
			t.Fatalf("the VM stopped before %s:\n%s", what, v.output())
		default:
		}
		return cond()
	})
}

func (v *nfsVM) output() string {
	b, _ := os.ReadFile(v.out)
	return string(b)
}

// stop asks the VM's command to end (DIR/stop), then stops the VM by its
// vm.sh's PID, which stops qemu and removes its tap.
func (v *nfsVM) stop(t *testing.T) {
	os.WriteFile(filepath.Join(v.dir, "stop"), nil, 0o644)
	select {
	case <-v.done:
		return
	case <-time.After(20 * time.Second):
	}
	v.kill()
}

// kill stops the VM at once, as a power cut would.
func (v *nfsVM) kill() {
	v.cmd.Process.Signal(syscall.SIGTERM)
	<-v.done
}

// run runs script in the VM (through hack/vm-agent.sh) and returns its
// output and status.
func (v *nfsVM) run(t *testing.T, script string) (string, int) {
	t.Helper()
	v.seq++
	id := strconv.Itoa(v.seq)
	tmp := filepath.Join(v.dir, "cmd", id+".sh.tmp")
	if err := os.WriteFile(tmp, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, strings.TrimSuffix(tmp, ".tmp")); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(v.dir, "out", id+".rc")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if b, err := os.ReadFile(rc); err == nil {
			out, _ := os.ReadFile(filepath.Join(v.dir, "out", id+".out"))
			code, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return string(out), code
		}
		select {
		case <-v.done:
			t.Fatalf("the VM stopped while running:\n%s\n%s", script, v.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from the VM within 3m to:\n%s\nits console:\n%s", script, lastLines(v.output(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nfsClient is one client VM: a host with its own rexray on the store.
type nfsClient struct {
	*nfsVM
	id, prelude string
}

// clients boots a client VM for each id at once, and then has each mount
// export with opts and serve rexray as instance id.
func (lab *nfsLab) clients(t *testing.T, opts, export string, ids ...string) []*nfsClient {
	t.Helper()
	var cs []*nfsClient
	for _, id := range ids {
		v := lab.boot(t, fmt.Sprintf("%s.%d", nfsNet, 10+lab.n), "hack/vm-agent.sh", "DIR")
		cs = append(cs, &nfsClient{nfsVM: v, id: id,
			prelude: fmt.Sprintf("set -u\nRX=/tmp/rx; ID=%s; . %s/hack/vm-nfs-client.sh\n", id, suite.repo)})
	}
	for _, c := range cs {
		c.await(t, "client "+c.id+"'s VM", func() bool {
			_, err := os.Stat(filepath.Join(c.dir, "ready"))
			return err == nil
		})
		c.must(t, fmt.Sprintf("modprobe loop; nfs_mount %s %s && rx_serve LOOPBACK_LEASETTL=%s", export, opts, nfsLeaseTTL))
	}
	return cs
}

// nfsLeaseTTL is LOOPBACK_LEASETTL's default: a renewal over NFS in an
// emulated VM on a busy host takes seconds, and a shorter lease has the
// holder fence itself (rightly) for renewals that did not come in time.
const nfsLeaseTTL = 15 * time.Second

func (c *nfsClient) sh(t *testing.T, script string) (string, int) {
	t.Helper()
	return c.run(t, c.prelude+script)
}

func (c *nfsClient) must(t *testing.T, script string) string {
	t.Helper()
	out, code := c.sh(t, script)
	if code != 0 {
		t.Fatalf("%s: status %d from:\n%s\n%s", c.id, code, script, out)
	}
	return strings.TrimSpace(out)
}

// ms runs script and returns the milliseconds it took in the VM.
func (c *nfsClient) ms(t *testing.T, script string) int {
	t.Helper()
	out := c.must(t, "t0=$(date +%s%N)\n{\n"+script+"\n} || exit $?\necho \"took $(( ($(date +%s%N) - t0) / 1000000 ))\"")
	m := regexp.MustCompile(`took (\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: no time in %q", c.id, out)
	}
	return atoi(m[1])
}

func testNFSStore(t *testing.T, lab *nfsLab, vers, opts, export string) {
	cs := lab.clients(t, opts, export, "c1", "c2")
	c1, c2 := cs[0], cs[1]
	if strings.HasPrefix(vers, "4") {
		testNFSv4DefaultIdentityRefused(t, c1, export)
	}
	// NFS's default is a hard mount: rexray says what that risks.
	if log := c1.must(t, "cat $RX/serve.log"); !strings.Contains(log, "mounted so that a write waits for the server longer than this host's self-fence") {
		t.Errorf("c1's log does not warn of the hard mount:\n%s", log)
	}

	// What one host creates, the other lists and uses.
	c1.must(t, "rx volume create shared -o size=64MiB")
	listed := c2.ms(t, "until rx volume ls | grep -qw shared; do sleep 0.05; done")
	t.Logf("figure: NFSv%s: a volume c1 created is listed on c2 %d ms after c1's create returned", vers, listed)
	c2.must(t, "m=$(rx volume mount shared) && echo from-c2 > $m/f && sync $m/f && rx volume unmount shared >/dev/null")
	if got := c1.must(t, "m=$(rx volume mount shared) && cat $m/f && rx volume unmount shared >/dev/null"); got != "from-c2" {
		t.Errorf("c1 reads %q from what c2 wrote, want from-c2", got)
	}

	// c1 appends fsync'd lines; c2 is refused without preempt, then takes
	// the volume with it.
	c1.startAppender(t, "shared")
	out, code := c2.sh(t, "rx volume mount shared")
	if code == 0 || !strings.Contains(out, "attached to host c1") || !strings.Contains(out, "REXRAY_PREEMPT=true") {
		t.Errorf("c2's mount while c1 holds the volume: status %d, %q; want a refusal naming c1 and how to preempt", code, out)
	}
	c2.must(t, "rx_serve LOOPBACK_LEASETTL="+nfsLeaseTTL.String()+" REXRAY_PREEMPT=true")
	took := c2.takeOver(t, c1)
	t.Logf("figure: NFSv%s: c2 took the volume from c1 with preempt in %d ms", vers, took)
	for _, c := range []*nfsClient{c1, c2} {
		t.Logf("%s's clock is %s off the host's (the lease needs clocks within a small part of its TTL)", c.id, c.clockOffset(t).Round(time.Millisecond))
	}
	c1.must(t, "until grep -q failed $RX/appender.log; do sleep 0.1; done")
	synced, _ := c1.stopAppender(t)
	if c2.holdsLog(t, c1, synced) {
		t.Logf("c1 synced %d lines before it was fenced; c2 holds them all", synced)
	}
	c2.must(t, "rx volume unmount shared")
	c1.sh(t, "rx volume unmount shared")

	testNFSServerRestart(t, lab, vers, c1, c2)

	// Two hosts creating one name at once make one volume.
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i, c := range []*nfsClient{c1, c2} {
		wg.Go(func() {
			if out, code := c.sh(t, "rx volume create same -o size=32MiB"); code != 0 {
				outs[i] = out
			}
		})
	}
	wg.Wait()
	for i, out := range outs {
		if out != "" {
			t.Errorf("c%d's create of same, at once with the other's: %s", i+1, out)
		}
	}
	if n := c1.must(t, "rx volume ls | grep -cw same"); n != "1" {
		t.Errorf("c1 lists %s volumes named same, want 1", n)
	}
	if imgs := c2.must(t, "ls $RX/nfs/store/volumes | grep -c '^same\\.img$'"); imgs != "1" {
		t.Errorf("%s images of same in the store, want 1", imgs)
	}

	// A holder killed hard is taken over once its lease runs out.
	c1.must(t, "rx volume mount same >/dev/null")
	c1.kill()
	start := time.Now()
	c2.must(t, "until rx volume mount same >/dev/null 2>&1; do sleep 0.2; done")
	t.Logf("figure: NFSv%s: c2 mounted the volume of c1, killed, %s after the kill (lease %s)", vers, time.Since(start).Round(100*time.Millisecond), nfsLeaseTTL)
	c2.must(t, "rx volume unmount same && rx volume rm same && rx volume rm shared")

	// Nothing is left on the survivor or in the store. A file removed while
	// a loop device still let go of it is first renamed by the NFS client
	// (.nfsXXXX), and goes once the device closes it.
	left := c2.must(t, `echo "loops $(losetup -a | grep -c $RX/nfs || true)"
echo "mounts $(findmnt -rn -o TARGET | grep -c "^$RX/mnt" || true)"
for i in $(seq 100); do [ -z "$(ls -A $RX/nfs/store/volumes)" ] && break; sleep 0.3; done
echo "files $(ls -A $RX/nfs/store/volumes | wc -l)"; ls -A $RX/nfs/store/volumes`)
	if want := "loops 0\nmounts 0\nfiles 0"; left != want {
		t.Errorf("left on c2 and in the store:\n%s\nwant\n%s", left, want)
	}
	c2.must(t, "rx_stop; umount $RX/nfs")
}

// testNFSv4DefaultIdentityRefused: a store on an NFSv4 mount is refused at
// start on a host named as hosts are before anything names them (every
// such host is one NFSv4 client to the server), naming the export, the
// name and how to give the host one of its own. rexray runs in a UTS
// namespace of its own named localhost; the VM's own name is its own.
func testNFSv4DefaultIdentityRefused(t *testing.T, c *nfsClient, export string) {
	out, code := c.sh(t, `mkdir -p /tmp/v4id && mount -t nfs -o vers=4.2 `+export+` /tmp/v4id || exit 99
mkdir -p /tmp/v4id/store
env $(rx_env) LOOPBACK_VOLUMEPATH=/tmp/v4id/store REXRAY_HOST=unix:///tmp/v4id.sock REXRAY_STATEDIR=/tmp/v4id.state timeout 60 unshare --uts sh -c 'hostname localhost && exec "$0" serve' $repo/bin/rexray 2>&1
code=$?; umount /tmp/v4id; exit $code`)
	if code == 0 || code == 99 || code == 124 || !strings.Contains(out, `default host name "localhost"`) || !strings.Contains(out, export) || !strings.Contains(out, "hostnamectl") {
		t.Errorf("rexray serve on an NFSv4 store on a host named localhost: status %d, %q; want a refusal at start naming %s, the name and how to name the host", code, out, export)
	}
}

// testNFSServerRestart restarts nfsd (its NFSv4 state lost, a grace
// period begun) while c1 appends to a volume it holds: c1 keeps the volume
// if its renewals come back in time and fences itself if not; either way
// no line it synced is lost, and c2, preempting, gets the volume.
func testNFSServerRestart(t *testing.T, lab *nfsLab, vers string, c1, c2 *nfsClient) {
	c1.startAppender(t, "shared")
	lab.restartServer(t, nfsServerDown)
	c1.must(t, `n=$(grep -c synced $RX/appender.log)
until grep -q failed $RX/appender.log || [ "$(grep -c synced $RX/appender.log)" -ge $((n+20)) ]; do sleep 0.1; if [ $SECONDS -gt 100 ]; then
  tail -n 3 $RX/appender.log; tail -n 10 $RX/serve.log; exit 1; fi; done`)
	synced, pause := c1.stopAppender(t)
	fenced := strings.Contains(c1.must(t, "cat $RX/appender.log"), "failed ")
	t.Logf("figure: NFSv%s: nfsd stopped for %s and started again: c1's fsync'd appends paused for %s; c1 fenced itself: %v", vers, nfsServerDown, pause.Round(100*time.Millisecond), fenced)
	took := c2.takeOver(t, c1)
	t.Logf("figure: NFSv%s: after the restart, c2 took the volume in %d ms", vers, took)
	c2.holdsLog(t, c1, synced)
	c2.must(t, "rx volume unmount shared")
	c1.sh(t, "rx volume unmount shared")
}

// takeOver mounts shared on c, the holder preempted, into $RX/m, and
// returns the milliseconds it took; if the mount fails, it fails the test
// with the records and both hosts' logs.
func (c *nfsClient) takeOver(t *testing.T, holder *nfsClient) int {
	t.Helper()
	out, code := c.sh(t, `t0=$(date +%s%N)
m=$(rx volume mount shared) || exit
echo $m > $RX/m; echo $(( ($(date +%s%N) - t0) / 1000000 ))`)
	if code == 0 {
		return atoi(strings.TrimSpace(out))
	}
	const log = "grep -E 'shared|preempt|lease' $RX/serve.log | tail -n 40"
	records, _ := c.sh(t, "grep . $RX/nfs/store/volumes/shared.lease $RX/nfs/store/volumes/shared.preempt; "+log)
	theirs, _ := holder.sh(t, log)
	t.Fatalf("%s's mount of shared, %s preempted: %s\nits records and log:\n%s\n%s's log:\n%s", c.id, holder.id, out, records, holder.id, theirs)
	return 0
}

// nfsServerDown is how long a restart keeps nfsd stopped: a restart, not
// an outage long enough to cost any holder its volumes by itself.
const nfsServerDown = 2 * time.Second

// restartServer stops nfsd, which loses its NFSv4 state, and starts it
// again after down.
func (lab *nfsLab) restartServer(t *testing.T, down time.Duration) {
	t.Helper()
	n := strings.Count(lab.srv.output(), "nfs: serving again")
	if err := os.WriteFile(filepath.Join(lab.srv.dir, "restart"), []byte(strconv.Itoa(int(down.Seconds()))), 0o644); err != nil {
		t.Fatal(err)
	}
	lab.srv.await(t, "nfsd's restart", func() bool { return strings.Count(lab.srv.output(), "nfs: serving again") > n })
}

// startAppender mounts vol and appends numbered lines to its file log,
// fsync'ing each, in the background, until at least 20 are synced. Its
// log, $RX/appender.log, says "synced N TIME" or "failed N TIME" per line.
func (c *nfsClient) startAppender(t *testing.T, vol string) {
	t.Helper()
	c.must(t, `m=$(rx volume mount `+vol+`)
setsid bash -c 'i=0; while true; do i=$((i+1)); if echo "line $i" >> '$m'/log && sync '$m'/log; then echo "synced $i $EPOCHREALTIME"; else echo "failed $i $EPOCHREALTIME"; fi; sleep 0.05; done' >$RX/appender.log 2>&1 </dev/null &
echo $! > $RX/appender.pid
until [ "$(grep -c synced $RX/appender.log)" -ge 20 ]; do sleep 0.1; if [ $SECONDS -gt 100 ]; then
  tail -n 3 $RX/appender.log; tail -n 10 $RX/serve.log; exit 1; fi; done`)
}

// appendLine is a line of an appender's log.
var appendLine = regexp.MustCompile(`(?m)^(synced|failed) (\d+) (\d+\.\d+)$`)

// stopAppender stops the appender and returns the last line it synced and
// the longest wait between two synced lines. No line may be synced after
// one failed: a fenced host writes nothing more.
func (c *nfsClient) stopAppender(t *testing.T) (synced int, pause time.Duration) {
	t.Helper()
	log := c.must(t, "kill $(cat $RX/appender.pid); cat $RX/appender.log")
	var last float64
	failed := false
	for _, m := range appendLine.FindAllStringSubmatch(log, -1) {
		if m[1] == "failed" {
			failed = true
			continue
		}
		if failed {
			t.Errorf("%s synced line %s after a failed write:\n%s", c.id, m[2], log)
		}
		at, _ := strconv.ParseFloat(m[3], 64)
		if last > 0 {
			pause = max(pause, time.Duration((at-last)*float64(time.Second)))
		}
		last, synced = at, atoi(m[2])
	}
	return synced, pause
}

// holdsLog checks that c, holding the volume mounted at $RX/m, has every
// one of the synced lines of the log, from the first, that the holder
// before synced; if not, it shows both hosts' logs.
func (c *nfsClient) holdsLog(t *testing.T, before *nfsClient, synced int) bool {
	t.Helper()
	lines := c.must(t, "grep -c . $(cat $RX/m)/log; head -n 1 $(cat $RX/m)/log")
	f := strings.Fields(lines)
	ok := len(f) == 3 && atoi(f[0]) >= synced && f[1]+" "+f[2] == "line 1"
	if !ok {
		last := c.must(t, "tail -n 3 $(cat $RX/m)/log; grep -E 'shared|preempt|lease' $RX/serve.log | tail -n 40")
		theirs, _ := before.sh(t, "grep -E 'synced|failed' $RX/appender.log | tail -n 5; grep -E 'shared|preempt|lease' $RX/serve.log | tail -n 40")
		t.Errorf("%s holds %q of the log, %s synced %d lines\n%s's last lines and log:\n%s\n%s's appender and log:\n%s", c.id, lines, before.id, synced, c.id, last, before.id, theirs)
	}
	return ok
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// clockOffset is how far the VM's clock is ahead of the host's, give or
// take the time the question takes to go and come back.
func (c *nfsClient) clockOffset(t *testing.T) time.Duration {
	t.Helper()
	before := time.Now()
	out := c.must(t, "date +%s%N")
	after := time.Now()
	ns, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("%s: date said %q", c.id, out)
	}
	return time.Unix(0, ns).Sub(before.Add(after.Sub(before) / 2))
}
