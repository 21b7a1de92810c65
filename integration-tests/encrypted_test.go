//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEncrypted: encrypted=true on the loopback driver with the real
// cryptsetup and dm-crypt, in a hack/vm.sh VM (this host's kernel has no
// device-mapper). Two rexray instances in host mode share one store, each
// with its own ledger and key folder, as two hosts do. What a user checks:
// the marker written into an encrypted volume is not in its image (it is
// in a plain one's), the volume reads back, and so do a copy and a volume
// made from a snapshot; a wrong key and a missing key fail the mount
// naming the volume and the key's path and leave the LUKS header as it
// was; the second host sees the volume encrypted, is refused without its
// copy of the key (and the first keeps the volume), and with it preempts
// and reads every line the first synced; removing volumes and snapshots
// removes their keys, and one whose key is lost is still removed; nothing
// stays mapped, attached or mounted. The
// plugin's rootfs opens a mapping with its own cryptsetup.
// testdata/encrypted-vm.sh runs the steps in the VM and prints what each
// gave; this judges them. The VM is gone when vm returns.
func TestEncrypted(t *testing.T) {
	marker := fmt.Sprintf("rexray-encrypted-marker-%d-%d", os.Getpid(), time.Now().UnixNano())
	out, code := vm(t, nil, "bash", filepath.Join(suite.repo, "integration-tests", "testdata", "encrypted-vm.sh"),
		filepath.Join(suite.repo, "bin", "rexray"), marker, filepath.Join(suite.repo, "build", "plugin", "rootfs"))
	s := parseSteps(out)
	if code != 0 || len(s) == 0 {
		t.Fatalf("the VM's script: status %d, %d steps; output:\n%s", code, len(s), out)
	}
	defer func() {
		if t.Failed() {
			t.Logf("the VM's output:\n%s", out)
		}
	}()
	const a, b = "/tmp/rx/a", "/tmp/rx/b"
	empty := kernelState{}

	// The control: the same write into a plain volume is in its image.
	s.ok(t, "plain-create", "plain-mount", "plain-unmount")
	if st := s.get(t, "plain-grep"); st.rc != 0 {
		t.Errorf("the marker is not in the plain volume's image (grep: %s): the check below proves nothing", st)
	}
	if f := s.fields(t, "plain-inspect"); f["encrypted"] != "false" {
		t.Errorf("plain volume: Status fields.encrypted = %q, want false", f["encrypted"])
	}

	s.ok(t, "enc-create")
	if st := s.get(t, "enc-key"); st.out != "600 64" {
		t.Errorf("the key file: mode and size %q, want 600 64 (%s)", st.out, st)
	}
	if f := s.fields(t, "enc-inspect"); f["encrypted"] != "true" {
		t.Errorf("encrypted volume: Status fields.encrypted = %q, want true", f["encrypted"])
	}
	s.ok(t, "enc-mount", "enc-write", "enc-unmount")
	if k := s.state(t, "enc-mapped"); len(k.mappings) != 1 || !strings.Contains(k.mounts, "/dev/mapper/"+k.mappings[0]+" "+a+"/mnt/enc ") {
		t.Errorf("while mounted: %+v; want the filesystem mounted from the volume's dm-crypt mapping", k)
	}
	if k := s.state(t, "enc-released"); !k.equal(empty) {
		t.Errorf("after unmount: %+v; want no mapping, loop device or mount left", k)
	}
	if st := s.get(t, "enc-grep"); st.rc != 1 || st.out != "0" {
		t.Errorf("the marker written inside the encrypted volume is in its image: grep -c %s", st)
	}
	if st := s.get(t, "enc-blkid"); st.out != "crypto_LUKS" {
		t.Errorf("the encrypted volume's image holds %q, want crypto_LUKS", st.out)
	}
	s.ok(t, "enc-remount", "enc-unmount2")
	s.reads(t, "enc-read", marker)

	// A copy and a volume made from a snapshot: their own keys, the same
	// bytes, encrypted as their source.
	s.ok(t, "copy-create", "copy-key", "copy-mount", "copy-unmount", "snap-create", "snap-key",
		"restored-create", "restored-mount", "restored-unmount")
	if f := s.fields(t, "copy-inspect"); f["encrypted"] != "true" {
		t.Errorf("copy: Status fields.encrypted = %q, want true", f["encrypted"])
	}
	s.reads(t, "copy-read", marker)
	s.reads(t, "restored-read", marker)
	if st := s.get(t, "copy-grep"); st.rc != 1 {
		t.Errorf("the marker is in the copy's image: grep -c %s", st)
	}

	// Wrong key, then none: refused, named, nothing formatted or left.
	uuid := s.get(t, "enc-uuid").out
	for step, says := range map[string]string{"wrongkey": "does not open it", "nokey": "is missing"} {
		st := s.get(t, step+"-mount")
		if st.rc == 0 || !strings.Contains(st.out, "volume enc") || !strings.Contains(st.out, a+"/keys/enc.key") || !strings.Contains(st.out, says) {
			t.Errorf("%s: mount %s; want a failure naming volume enc and its key %s/keys/enc.key, saying %q", step, st, a, says)
		}
		if k := s.state(t, step+"-state"); !k.equal(empty) {
			t.Errorf("%s: after the failed mount: %+v; want nothing left", step, k)
		}
		if got := s.get(t, step+"-uuid").out; uuid == "" || got != uuid {
			t.Errorf("%s: the LUKS header's UUID is %q, was %q: the volume was formatted again", step, got, uuid)
		}
	}
	s.ok(t, "keyback-mount")
	s.reads(t, "keyback-read", marker)
	s.ok(t, "grow")
	before, after := dfSize(s.get(t, "grow-before").out), dfSize(s.get(t, "grow-after").out)
	if before <= 0 || after < before+48 {
		t.Errorf("grown from 64MiB to 128MiB while mounted: its filesystem went from %d to %d MiB; want at least 48 MiB more", before, after)
	}

	// The second host.
	if f := s.fields(t, "b-inspect"); f["encrypted"] != "true" || f["attachedTo"] != "a" {
		t.Errorf("host b sees fields.encrypted = %q, attachedTo = %q; want true, a", f["encrypted"], f["attachedTo"])
	}
	if st := s.get(t, "b-nokey-mount"); st.rc == 0 || !strings.Contains(st.out, "volume enc") || !strings.Contains(st.out, b+"/keys/enc.key") {
		t.Errorf("host b without the key: mount %s; want a failure naming volume enc and %s/keys/enc.key", st, b)
	}
	if k := s.state(t, "b-nokey-state"); !strings.Contains(k.mounts, " "+a+"/mnt/enc ") {
		t.Errorf("after host b's refused mount: %+v; want host a's mount kept (no preempt for a host that cannot open it)", k)
	}
	s.ok(t, "a-write", "b-preempt", "b-unmount")
	s.reads(t, "b-read", marker+"\nsecond-"+marker)
	if k := s.state(t, "preempt-state"); len(k.mappings) != 1 || strings.Contains(k.mounts, a+"/mnt/enc") || !strings.Contains(k.mounts, b+"/mnt/enc") {
		t.Errorf("after host b preempted: %+v; want one mapping, host b's mount only", k)
	}

	// Removal takes the keys, after the volumes.
	s.ok(t, "copy-rm", "snap-rm", "enc-rm", "lostkey-rm")
	if st := s.get(t, "copy-rm-key"); strings.Contains(st.out, "copy.key") || !strings.Contains(st.out, "enc.key") {
		t.Errorf("keys after removing copy: %s; want copy.key gone, enc.key kept", st)
	}
	if st := s.get(t, "snap-rm-key"); strings.Contains(st.out, "snap1.key") {
		t.Errorf("snapshot keys after removing snap1: %s", st)
	}
	if st := s.get(t, "enc-rm-key"); strings.Contains(st.out, "enc.key") {
		t.Errorf("host b's keys after removing enc: %s", st)
	}
	if st := s.get(t, "enc-rm-img"); strings.Contains(st.out, "enc.") {
		t.Errorf("the store after removing enc: %s", st)
	}
	// The plugin's rootfs carries a cryptsetup that works.
	s.ok(t, "rootfs-format", "rootfs-open", "rootfs-mkfs", "rootfs-close")
	if st := s.get(t, "rootfs-blkid"); st.out != "ext4" {
		t.Errorf("in the plugin's rootfs, mkfs.ext4 on a mapping its cryptsetup opened: blkid says %s", st)
	}
	if k := s.state(t, "final-state"); !k.equal(empty) {
		t.Errorf("at the end: %+v; want nothing left", k)
	}
	for _, name := range []string{"warm-open", "enc-mount", "enc-remount", "b-preempt", "grow"} {
		t.Logf("timing: in the VM, %s took %s", name, s.get(t, name).took)
	}
}

// vmStep is what one step of a VM script printed.
type vmStep struct {
	rc   int
	out  string
	took string
}

func (s vmStep) String() string { return fmt.Sprintf("status %d: %q", s.rc, s.out) }

type vmSteps map[string]vmStep

var stepLine = regexp.MustCompile(`^@@step (\S+) rc=(\d+) took=(\S+)$`)

// parseSteps reads the records "@@step NAME rc=N took=D" and the lines
// after each.
func parseSteps(out string) vmSteps {
	steps := vmSteps{}
	name := ""
	var lines []string
	flush := func() {
		if name != "" {
			st := steps[name]
			st.out = strings.TrimSpace(strings.Join(lines, "\n"))
			steps[name] = st
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if m := stepLine.FindStringSubmatch(l); m != nil {
			flush()
			rc, _ := strconv.Atoi(m[2])
			name, lines = m[1], nil
			steps[name] = vmStep{rc: rc, took: m[3]}
			continue
		}
		if !strings.HasPrefix(l, "log: ") {
			lines = append(lines, l)
		}
	}
	flush()
	return steps
}

func (s vmSteps) get(t *testing.T, name string) vmStep {
	t.Helper()
	st, ok := s[name]
	if !ok {
		t.Errorf("the VM's script did not run step %s", name)
	}
	return st
}

// ok asserts that the steps succeeded.
func (s vmSteps) ok(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if st := s.get(t, n); st.rc != 0 {
			t.Errorf("%s: %s", n, st)
		}
	}
}

// reads asserts that a step printed want.
func (s vmSteps) reads(t *testing.T, name, want string) {
	t.Helper()
	if st := s.get(t, name); st.rc != 0 || st.out != want {
		t.Errorf("%s: %s, want %q", name, st, want)
	}
}

// fields is the Status fields of a `rexray volume inspect --format json`.
func (s vmSteps) fields(t *testing.T, name string) map[string]string {
	t.Helper()
	var vols []struct {
		Fields map[string]string `json:"fields"`
	}
	st := s.get(t, name)
	if err := json.Unmarshal([]byte(st.out), &vols); err != nil || len(vols) != 1 {
		t.Errorf("%s: %s: not one volume in JSON (%v)", name, st, err)
		return nil
	}
	return vols[0].Fields
}

// kernelState is what the VM's kernel held: dm mappings, loop devices,
// mounts under the test's folder.
type kernelState struct {
	mappings      []string
	loops, mounts string
}

func (k kernelState) equal(o kernelState) bool {
	return strings.Join(k.mappings, " ") == strings.Join(o.mappings, " ") && k.loops == o.loops && k.mounts == o.mounts
}

func (s vmSteps) state(t *testing.T, name string) kernelState {
	t.Helper()
	var k kernelState
	for _, l := range strings.Split(s.get(t, name).out, "\n") {
		key, val, _ := strings.Cut(l, ":")
		val = strings.TrimSpace(val)
		switch key {
		case "mappings":
			k.mappings = strings.Fields(val)
		case "loops":
			k.loops = val
		case "mounts":
			k.mounts = val
		}
	}
	return k
}

// testEncryptedNeedsDMCrypt: on a host whose kernel has no dm-crypt
// loaded (this one has no device-mapper at all), the managed plugin on a
// real dockerd refuses an encrypted volume at once, saying the kernel
// lacks dm-crypt, and leaves nothing: no volume listed, nothing in the
// store, no key in its keys mount. So does the create of a docker run -v
// under CREATE_DEFAULT_ENCRYPTED, and encrypted=false still makes a plain
// volume then. On a host with dm-crypt loaded, the plugin makes one and a
// container's data is not in its image instead.
func testEncryptedNeedsDMCrypt(t *testing.T) {
	_, dm := os.Stat("/sys/class/misc/device-mapper")
	_, crypt := os.Stat("/sys/module/dm_crypt")
	if dm == nil && crypt == nil {
		testEncryptedOnThisHost(t)
		return
	}
	before := storeFiles(t)
	start := time.Now()
	_, err := suite.docker("volume", "create", "--driver", plugin, "-o", "encrypted=true", "-o", "size=64M", "enc1")
	t.Logf("timing: the refused encrypted create took %s: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "the kernel lacks dm-crypt") || !strings.Contains(err.Error(), "nothing was created") {
		t.Errorf("docker volume create -o encrypted=true: %v; want the kernel lacks dm-crypt, nothing created", err)
	}
	setEnv(t, "LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_CREATE_DEFAULT_ENCRYPTED=true")
	defer setEnv(t, "LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_CREATE_DEFAULT_ENCRYPTED=false")
	out, err := suite.docker("run", "--rm", "--volume-driver", plugin, "-v", "enc2:/data", "busybox", "true")
	if err == nil || !strings.Contains(err.Error()+out, "the kernel lacks dm-crypt") {
		t.Errorf("docker run -v enc2 (created with the defaults, encrypted): %v %s; want the kernel lacks dm-crypt", err, out)
	}
	mustDocker(t, "volume", "create", "--driver", plugin, "-o", "encrypted=false", "-o", "size=64M", "plain1")
	if f := mustDocker(t, "volume", "inspect", "--format", "{{.Status.fields.encrypted}}", "plain1"); f != "false" {
		t.Errorf("plain1: Status fields.encrypted = %q, want false", f)
	}
	mustDocker(t, "volume", "rm", "plain1")
	if names := mustDocker(t, "volume", "ls", "-q"); strings.Contains(names, "enc1") || strings.Contains(names, "enc2") {
		t.Errorf("docker volume ls after the refused creates:\n%s", names)
	}
	if after := storeFiles(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("the store held %v, now %v", before, after)
	}
	if keys, err := os.ReadDir(suite.keys); err != nil || len(keys) != 0 {
		t.Errorf("the keys mount holds %v (%v); want nothing", keys, err)
	}
}

// dfSize is the size df --output=size printed, or -1.
func dfSize(out string) int {
	f := strings.Fields(out)
	if len(f) != 2 {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSuffix(f[1], "M"))
	if err != nil {
		return -1
	}
	return n
}

// testEncryptedOnThisHost: the plugin's encrypted volume on a host with
// dm-crypt: created, written by a container, its marker not in its image,
// Status fields.encrypted true, removed with its key.
func testEncryptedOnThisHost(t *testing.T) {
	marker := fmt.Sprintf("rexray-plugin-marker-%d", time.Now().UnixNano())
	mustDocker(t, "volume", "create", "--driver", plugin, "-o", "encrypted=true", "-o", "size=64M", "enc1")
	defer suite.docker("volume", "rm", "enc1")
	mustDocker(t, "run", "--rm", "-v", "enc1:/data", "busybox", "sh", "-c", "echo "+marker+" >/data/f && sync")
	if out := mustDocker(t, "run", "--rm", "-v", "enc1:/data", "busybox", "cat", "/data/f"); out != marker {
		t.Errorf("read back %q, want %q", out, marker)
	}
	if img, err := os.ReadFile(suite.image("enc1")); err != nil || bytes.Contains(img, []byte(marker)) {
		t.Errorf("the encrypted volume's image holds the marker written inside (or cannot be read: %v)", err)
	}
	if f := mustDocker(t, "volume", "inspect", "--format", "{{.Status.fields.encrypted}}", "enc1"); f != "true" {
		t.Errorf("Status fields.encrypted = %q, want true", f)
	}
	mustDocker(t, "volume", "rm", "enc1")
	if keys, err := os.ReadDir(suite.keys); err != nil || len(keys) != 0 {
		t.Errorf("the keys mount holds %v (%v) after removal; want nothing", keys, err)
	}
}
