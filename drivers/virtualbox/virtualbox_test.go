package virtualbox

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/internal/vboxfake"
)

// These tests run the driver against vboxfake, a FAKE of vboxwebsrv:
// VirtualBox cannot run here. What they prove is that the driver sends the
// calls the WSDL describes in a sensible order and handles the service's
// answers and failures; not that a real VirtualBox accepts them.

const gib = 1 << 30

// vm is one guest: a driver whose /dev/disk/by-id is a temporary folder
// that the fake fills when it attaches a disk to this VM.
type vm struct {
	d    *Driver
	id   string
	byID string
}

type world struct {
	fake *vboxfake.Service
	url  string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	fake := vboxfake.New()
	fake.Username, fake.Password = "vbox", "secret"
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &world{fake: fake, url: srv.URL}
}

// addVM adds a machine with a 2-port SATA controller and a driver for it.
// An empty name is this host: the machine has this host's MAC address and
// the driver finds it by that.
func (w *world) addVM(t *testing.T, name string) *vm {
	t.Helper()
	macs := []string{"080027000042"}
	cfg := w.config()
	if name == "" {
		local, err := localMACs()
		if err != nil {
			t.Skipf("no MAC address on this host: %v", err)
		}
		name, macs = "self", local[:1]
	} else {
		cfg.LocalMachineNameOrID = name
	}
	v := &vm{id: w.fake.AddMachine(name, macs, "SATA", 2), byID: t.TempDir()}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.guest.byID, d.guest.scsiHosts = v.byID, t.TempDir()
	v.d = d
	return v
}

func (w *world) config() Config {
	return Config{Endpoint: w.url, Username: "vbox", Password: "secret", VolumePath: "/Users/me/VirtualBox/Volumes",
		ControllerName: "SATA", DeviceWait: 2 * time.Second}
}

// plugDisks makes the fake's attaches show up as by-id links in the VMs'
// folders, as udev would make them.
func (w *world) plugDisks(t *testing.T, vms ...*vm) {
	link := func(v *vm, medium string) string {
		first, _, _ := strings.Cut(medium, "-")
		return filepath.Join(v.byID, "ata-VBOX_HARDDISK_VB"+first+"-"+medium[len(medium)-8:])
	}
	w.fake.OnAttach = func(machine, medium string) {
		for _, v := range vms {
			if v.id == machine {
				dev := filepath.Join(v.byID, "..", "sd-"+medium)
				if err := os.WriteFile(dev, nil, 0o600); err != nil {
					t.Error(err)
				}
				if err := os.Symlink(dev, link(v, medium)); err != nil {
					t.Error(err)
				}
			}
		}
	}
	w.fake.OnDetach = func(machine, medium string) {
		for _, v := range vms {
			if v.id == machine {
				os.Remove(link(v, medium))
			}
		}
	}
}

func TestLifeCycle(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	self := w.addVM(t, "")
	w.plugDisks(t, self)
	d := self.d

	id, err := d.InstanceID(ctx)
	if err != nil || id != self.id {
		t.Fatalf("InstanceID by MAC = %q, %v; want %s", id, err, self.id)
	}
	v, err := d.Create(ctx, "vol1", drivers.CreateOptions{Size: gib, FSType: "xfs", IOPS: 100})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "vol1" || v.Size != gib || v.FSType != "xfs" || v.CreatedAt.IsZero() ||
		v.Fields["location"] != "/Users/me/VirtualBox/Volumes/vol1.vmdk" {
		t.Fatalf("created %+v", v)
	}
	if _, err := d.Create(ctx, "vol1", drivers.CreateOptions{Size: gib}); !errors.Is(err, drivers.ErrExists) {
		t.Fatalf("second create of vol1: %v, want ErrExists", err)
	}

	dev, err := d.Attach(ctx, "vol1", false)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dev) != "sd-"+v.Fields["mediumID"] {
		t.Fatalf("device %s is not vol1's disk", dev)
	}
	if again, err := d.Attach(ctx, "vol1", false); err != nil || again != dev {
		t.Fatalf("second attach = %q, %v; want %s", again, err, dev)
	}
	if n := w.fake.Calls("IMachine_attachDevice"); n != 1 {
		t.Fatalf("attachDevice called %d times, want once", n)
	}

	clone, err := d.Create(ctx, "vol2", drivers.CreateOptions{FromVolume: "vol1", Size: 2 * gib})
	if err != nil {
		t.Fatal(err)
	}
	if clone.Origin != "vol1" || clone.Size != 2*gib || clone.FSType != "xfs" {
		t.Fatalf("clone %+v", clone)
	}
	if _, err := d.Attach(ctx, "vol2", false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(ctx, "vol3", drivers.CreateOptions{Size: gib}); err != nil {
		t.Fatal(err)
	}
	_, err = d.Attach(ctx, "vol3", false)
	if err == nil || !strings.Contains(err.Error(), "no free port on controller SATA: all 2 are in use") {
		t.Fatalf("third attach on 2 ports: %v", err)
	}
	if got := w.fake.Attached(self.id); len(got) != 2 {
		t.Fatalf("attached after the refused attach: %v", got)
	}

	err = d.Remove(ctx, "vol2")
	if err == nil || !strings.Contains(err.Error(), "attached to machine self") {
		t.Fatalf("remove of an attached volume: %v", err)
	}
	for _, name := range []string{"vol1", "vol2", "vol1"} {
		if err := d.Detach(ctx, name); err != nil {
			t.Fatalf("detach %s: %v", name, err)
		}
	}
	if got := w.fake.Attached(self.id); len(got) != 0 {
		t.Fatalf("still attached: %v", got)
	}
	if links, _ := filepath.Glob(filepath.Join(self.byID, "*")); len(links) != 0 {
		t.Fatalf("disks left in the guest: %v", links)
	}
	for _, name := range []string{"vol1", "vol2", "vol3"} {
		if err := d.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Remove(ctx, "vol1"); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("remove of a removed volume: %v, want ErrNotFound", err)
	}
	if vols, err := d.List(ctx); err != nil || len(vols) != 0 {
		t.Fatalf("list at the end: %v, %v", vols, err)
	}
	if m := w.fake.Media(); len(m) != 0 {
		t.Fatalf("media left: %+v", m)
	}
	if n := w.fake.Logons(); n != 1 {
		t.Fatalf("%d logons for one life cycle, want one session", n)
	}
	if n := w.fake.LiveRefs(); n != 0 {
		t.Fatalf("%d object references not released", n)
	}
}

func TestSessionExpiresLogsOnAgain(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	d := w.addVM(t, "vm1").d
	if _, err := d.Create(ctx, "a", drivers.CreateOptions{Size: gib}); err != nil {
		t.Fatal(err)
	}
	w.fake.ExpireSessions()
	vols, err := d.List(ctx)
	if err != nil || len(vols) != 1 || vols[0].Name != "a" {
		t.Fatalf("list after the session expired: %v, %v", vols, err)
	}
	if n := w.fake.Logons(); n != 2 {
		t.Fatalf("%d logons, want 2 (one again after expiry)", n)
	}
}

func TestFailedProgressLeavesNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	d := w.addVM(t, "vm1").d
	w.fake.FailNextProgress("IMedium_createBaseStorage", "VERR_DISK_FULL")
	_, err := d.Create(ctx, "full", drivers.CreateOptions{Size: gib})
	if err == nil || !strings.Contains(err.Error(), "create volume full: create the disk image: VirtualBox says: VERR_DISK_FULL") {
		t.Fatalf("create with a failing progress: %v", err)
	}
	if _, err := d.Create(ctx, "src", drivers.CreateOptions{Size: gib}); err != nil {
		t.Fatal(err)
	}
	w.fake.FailNextProgress("IMedium_cloneTo", "VERR_IO")
	if _, err := d.Create(ctx, "copy", drivers.CreateOptions{FromVolume: "src"}); err == nil || !strings.Contains(err.Error(), "VERR_IO") {
		t.Fatalf("clone with a failing progress: %v", err)
	}
	if m := w.fake.Media(); len(m) != 1 || !strings.HasSuffix(m[0].Location, "/src.vmdk") {
		t.Fatalf("media after failed creates: %+v (want only src)", m)
	}
}

func TestTakeOverFromAnotherVM(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	a, b := w.addVM(t, "vm-a"), w.addVM(t, "vm-b")
	w.plugDisks(t, a, b)
	if _, err := a.d.Create(ctx, "shared", drivers.CreateOptions{Size: gib}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.d.Attach(ctx, "shared", false); err != nil {
		t.Fatal(err)
	}
	_, err := b.d.Attach(ctx, "shared", false)
	var held *drivers.HeldError
	if !errors.As(err, &held) || !strings.Contains(err.Error(), "volume shared is attached to machine vm-a ("+a.id+")") {
		t.Fatalf("attach of a volume another VM holds: %v", err)
	}
	if _, err := b.d.Attach(ctx, "shared", true); err != nil {
		t.Fatal(err)
	}
	if len(w.fake.Attached(a.id)) != 0 || len(w.fake.Attached(b.id)) != 1 {
		t.Fatalf("after preempt: a has %v, b has %v", w.fake.Attached(a.id), w.fake.Attached(b.id))
	}
	if links, _ := filepath.Glob(filepath.Join(a.byID, "*")); len(links) != 0 {
		t.Fatalf("vm-a still sees the disk: %v", links)
	}
}

func TestDiskThatNeverAppearsIsGivenBack(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	v := w.addVM(t, "vm1")
	v.d.guest.wait = 300 * time.Millisecond
	if _, err := v.d.Create(ctx, "ghost", drivers.CreateOptions{Size: gib}); err != nil {
		t.Fatal(err)
	}
	_, err := v.d.Attach(ctx, "ghost", false)
	if err == nil || !strings.Contains(err.Error(), "appeared in this guest within 300ms") {
		t.Fatalf("attach without a disk in the guest: %v", err)
	}
	if got := w.fake.Attached(v.id); len(got) != 0 {
		t.Fatalf("left attached: %v", got)
	}
}

func TestErrorsSayWhatToFix(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.fake.AddMachine("vm1", []string{"080027000001"}, "SATA", 2)
	dead := httptest.NewServer(nil)
	dead.Close()

	cases := []struct {
		name string
		cfg  func(*Config)
		call func(*Driver) error
		want string
	}{
		{"unreachable", func(c *Config) { c.Endpoint = dead.URL },
			func(d *Driver) error { _, err := d.List(ctx); return err }, "vboxwebsrv not reachable at " + dead.URL + " (VIRTUALBOX_ENDPOINT)"},
		{"password", func(c *Config) { c.Password = "wrong" },
			func(d *Driver) error { _, err := d.List(ctx); return err }, "websrvauthlibrary null"},
		{"machine name", func(c *Config) { c.LocalMachineNameOrID = "nope" },
			func(d *Driver) error { _, err := d.InstanceID(ctx); return err }, `no VirtualBox machine is named or has the UUID "nope" (VIRTUALBOX_LOCALMACHINENAMEORID)`},
		{"no MAC match", func(c *Config) {},
			func(d *Driver) error { _, err := d.InstanceID(ctx); return err }, "no VirtualBox machine has a network adapter with this host's MAC addresses"},
		{"controller", func(c *Config) { c.LocalMachineNameOrID, c.ControllerName = "vm1", "IDE" },
			func(d *Driver) error {
				if _, err := d.Create(ctx, "v", drivers.CreateOptions{Size: gib}); err != nil {
					return err
				}
				defer d.Remove(ctx, "v")
				_, err := d.Attach(ctx, "v", false)
				return err
			}, "the machine has no storage controller named IDE (VIRTUALBOX_CONTROLLERNAME)"},
		{"snapshot", func(c *Config) {},
			func(d *Driver) error {
				_, err := d.Create(ctx, "v", drivers.CreateOptions{Size: gib, FromSnapshot: "s"})
				return err
			}, "VirtualBox snapshots whole machines"},
		{"pool", func(c *Config) {},
			func(d *Driver) error {
				_, err := d.Create(ctx, "v", drivers.CreateOptions{Size: gib, Pool: "p"})
				return err
			}, "no pools"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := w.config()
			c.cfg(&cfg)
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.call(d); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want it to say %q", err, c.want)
			}
		})
	}
	// Without a volume path the plugin starts, and says what to set.
	d, err := New(Config{Endpoint: w.url, ControllerName: "SATA"})
	if err != nil {
		t.Fatalf("New without a volume path: %v", err)
	}
	if _, err := d.Create(ctx, "v", drivers.CreateOptions{Size: gib}); err == nil || !strings.Contains(err.Error(), "VIRTUALBOX_VOLUMEPATH is not set") {
		t.Fatalf("create without a volume path: %v", err)
	}
	if _, err := New(Config{Endpoint: "10.0.2.2:18083", VolumePath: "/v", ControllerName: "SATA"}); err == nil || !strings.Contains(err.Error(), "VIRTUALBOX_ENDPOINT") {
		t.Fatalf("New with an endpoint without scheme: %v", err)
	}
}

func TestWindowsVolumePath(t *testing.T) {
	d := &Driver{cfg: Config{VolumePath: `C:\Users\me\VirtualBox\Volumes\`}}
	loc := d.location("db")
	if loc != `C:\Users\me\VirtualBox\Volumes\db.vmdk` {
		t.Fatalf("location %s", loc)
	}
	if name, ok := d.volumeName(loc); !ok || name != "db" {
		t.Fatalf("volumeName(%s) = %q, %v", loc, name, ok)
	}
	for _, other := range []string{`C:\Users\me\VirtualBox VMs\vm\disk.vmdk`, `C:\Users\me\VirtualBox\Volumes\db.vdi`} {
		if name, ok := d.volumeName(other); ok {
			t.Errorf("volumeName(%s) = %q, want not a volume", other, name)
		}
	}
}

// The first format is kept in the medium's description, with the rest of
// the volume's record, so every host that shares the VirtualBox sees it.
func TestRecordFormat(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	self := w.addVM(t, "")
	d := self.d
	if _, err := d.Create(ctx, "vol1", drivers.CreateOptions{Size: gib, FSType: "xfs", IOPS: 100}); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Inspect(ctx, "vol1"); err != nil || !v.Unformatted || !v.Formatted.IsZero() {
		t.Fatalf("a new volume: %+v, %v; want it unformatted", v.Meta, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := d.RecordFormat(ctx, "vol1", at); err != nil {
		t.Fatal(err)
	}
	v, err := d.Inspect(ctx, "vol1")
	if err != nil || v.Unformatted || !v.Formatted.Equal(at) || v.FSType != "xfs" || v.IOPS != 100 {
		t.Errorf("after RecordFormat: %+v, %v; want formatted at %s, the rest kept", v.Meta, err, at)
	}
	if err := d.RecordFormat(ctx, "nope", at); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("RecordFormat of a missing volume = %v, want not found", err)
	}
}

// An attached disk is not resized (VirtualBox holds its write lock): the
// refusal names the machine and leaves the size; once detached, it grows.
func TestExpandOnlyDetached(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	self := w.addVM(t, "")
	w.plugDisks(t, self)
	d := self.d
	if _, err := d.Create(ctx, "grows", drivers.CreateOptions{Size: gib}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Attach(ctx, "grows", false); err != nil {
		t.Fatal(err)
	}
	_, err := d.Expand(ctx, "grows", 2*gib)
	if err == nil || !strings.Contains(err.Error(), "attached to machine self") || !strings.Contains(err.Error(), "stop the containers that use it") {
		t.Fatalf("Expand of an attached volume = %v; want a refusal naming the machine and what to do", err)
	}
	if v, err := d.Inspect(ctx, "grows"); err != nil || v.Size != gib {
		t.Fatalf("after the refused Expand: %d bytes, %v; want %d", v.Size, err, gib)
	}
	if err := d.Detach(ctx, "grows"); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Expand(ctx, "grows", 2*gib); err != nil || v.Size != 2*gib {
		t.Fatalf("Expand of a detached volume = %d bytes, %v; want %d", v.Size, err, 2*gib)
	}
	if n := w.fake.Calls("IMedium_resize"); n != 1 {
		t.Errorf("IMedium_resize called %d times, want once (the refused one never reaches VirtualBox)", n)
	}
}
