// Package drivertest is the conformance suite of the driver contract
// (package drivers): what the engine relies on every driver to do, written
// once. Each driver's package runs it against its platform (or a fake of
// it) in a test named TestConformance:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, drivertest.Harness{Hosts: ...})
//	}
//
// The suite looks at the contract from two hosts sharing one platform, as
// the engine's users do: a volume one host makes, holds or removes is
// seen so by the other. Each check's comment states the rule it holds
// every driver to.
package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
)

// Harness is how the suite reaches a driver.
type Harness struct {
	// Hosts gives the drivers of two hosts, A and B, on one platform: what
	// A makes, B sees. Every subtest calls it once, with its own t, so the
	// drivers may be new each time (and cleaned up with t) while the
	// platform is shared: each subtest uses names of its own (starting
	// with "cf-"), and removes what it made. A and B are distinct hosts to
	// the platform (instance IDs, machines).
	Hosts func(t *testing.T) (a, b drivers.Driver)
	// Size is the size of the volumes the suite creates, in bytes: 16 MiB
	// if zero.
	Size int64
	// CheckDevice, if set, fails t unless dev, which host's Attach
	// returned, is the volume's device there (a block device, say).
	CheckDevice func(t *testing.T, host drivers.Driver, dev string)
	// LostWait bounds how long a Watcher gets to report a volume another
	// host took with force: a minute if zero.
	LostWait time.Duration
	// DeviceSize, if set, is the size in bytes of a device Attach
	// returned: a GrowthWatcher's device must have its volume's new size
	// when it reports the growth.
	DeviceSize func(dev string) (int64, error)
}

// Run runs the suite, each part a subtest. Nothing is skipped: a driver
// without a capability is checked to be refused it.
func Run(t *testing.T, h Harness) {
	if h.Size == 0 {
		h.Size = 16 << 20
	}
	if h.LostWait == 0 {
		h.LostWait = time.Minute
	}
	for _, c := range []struct {
		name string
		run  func(*env)
	}{
		{"Create", testCreate},
		{"CreateTakenName", testCreateTakenName},
		{"InvalidNames", testInvalidNames},
		{"Missing", testMissing},
		{"AttachDetach", testAttachDetach},
		{"RemoveAttached", testRemoveAttached},
		{"HeldByAnotherHost", testHeldByAnotherHost},
		{"Snapshotter", testSnapshotter},
		{"Expander", testExpander},
		{"GrowthWatcher", testGrowthWatcher},
		{"BlankChecker", testBlankChecker},
		{"FormatRecorder", testFormatRecorder},
		{"NameLister", testNameLister},
		{"Capacitor", testCapacitor},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := h.Hosts(t)
			c.run(&env{T: t, ctx: t.Context(), h: h, a: a, b: b})
		})
	}
}

// env is one subtest's hosts.
type env struct {
	*testing.T
	ctx  context.Context
	h    Harness
	a, b drivers.Driver
}

// cleanupTimeout bounds each clean-up call: t's context has ended by then.
const cleanupTimeout = time.Minute

func (e *env) opts() drivers.CreateOptions {
	return drivers.CreateOptions{Size: e.h.Size, FSType: "ext4", IOPS: 100}
}

// create makes volume name on host A, and removes it when the test ends,
// detached from both hosts first.
func (e *env) create(name string) drivers.Volume {
	e.Helper()
	v, err := e.a.Create(e.ctx, name, e.opts())
	if err != nil {
		e.Fatalf("A: Create(%s) = %v", name, err)
	}
	e.removeAtEnd(name)
	return v
}

func (e *env) removeAtEnd(name string) {
	e.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		e.a.Detach(ctx, name)
		e.b.Detach(ctx, name)
		if err := e.a.Remove(ctx, name); err != nil && !errors.Is(err, drivers.ErrNotFound) {
			e.Errorf("clean up: Remove(%s) = %v", name, err)
		}
	})
}

func (e *env) attach(host string, d drivers.Driver, name string) string {
	e.Helper()
	dev, err := d.Attach(e.ctx, name, false)
	if err != nil || dev == "" {
		e.Fatalf("%s: Attach(%s) = %q, %v; want a device", host, name, dev, err)
	}
	if e.h.CheckDevice != nil {
		e.h.CheckDevice(e.T, d, dev)
	}
	return dev
}

// inspect fails the test unless host d sees volume name attached there as
// dev ("" for not attached there).
func (e *env) inspect(host string, d drivers.Driver, name, dev string) drivers.Volume {
	e.Helper()
	v, err := d.Inspect(e.ctx, name)
	if err != nil {
		e.Fatalf("%s: Inspect(%s) = %v", host, name, err)
	}
	if v.Name != name || v.Device != dev {
		e.Errorf("%s: Inspect(%s) = name %q, device %q; want device %q", host, name, v.Name, v.Device, dev)
	}
	return v
}

// listed is volume name as host d's List has it.
func (e *env) listed(host string, d drivers.Driver, name string) (drivers.Volume, bool) {
	e.Helper()
	vols, err := d.List(e.ctx)
	if err != nil {
		e.Fatalf("%s: List = %v", host, err)
	}
	for _, v := range vols {
		if v.Name == name {
			return v, true
		}
	}
	return drivers.Volume{}, false
}

// gone fails the test unless volume name is gone from both hosts.
func (e *env) gone(name string) {
	e.Helper()
	for host, d := range e.hosts() {
		if _, err := d.Inspect(e.ctx, name); !errors.Is(err, drivers.ErrNotFound) {
			e.Errorf("%s: Inspect(%s) after its Remove = %v, want ErrNotFound", host, name, err)
		}
		if _, ok := e.listed(host, d, name); ok {
			e.Errorf("%s: List has %s after its Remove", host, name)
		}
	}
}

func (e *env) hosts() map[string]drivers.Driver { return map[string]drivers.Driver{"A": e.a, "B": e.b} }

// same fails the test unless got is want as another call sees it: the same
// name, size and record of how it was made.
func (e *env) same(where string, got, want drivers.Volume) {
	e.Helper()
	g, w := got.Meta, want.Meta
	if got.Name != want.Name || got.Size != want.Size || g.FSType != w.FSType || g.Type != w.Type || g.IOPS != w.IOPS ||
		g.AvailabilityZone != w.AvailabilityZone || !g.CreatedAt.Equal(w.CreatedAt) || g.Origin != w.Origin ||
		g.Snapshot != w.Snapshot || !g.Formatted.Equal(w.Formatted) || g.Unformatted != w.Unformatted {
		e.Errorf("%s: %s of %d bytes, %+v; want %s of %d bytes, %+v", where, got.Name, got.Size, g, want.Name, want.Size, w)
	}
}

func (e *env) is(what string, err, target error) {
	e.Helper()
	if !errors.Is(err, target) {
		e.Errorf("%s = %v, want %v", what, err, target)
	}
}

// A new volume is as asked, empty and unformatted, and both hosts see it.
func testCreate(e *env) {
	const name = "cf-create"
	v := e.create(name)
	if v.Name != name || v.Size < e.h.Size || v.CreatedAt.IsZero() || !v.Unformatted || !v.Formatted.IsZero() || v.FSType != "ext4" || v.Device != "" {
		e.Errorf("A: Create(%s) = %s of %d bytes, device %q, %+v; want %d bytes or more, created, unformatted, fsType ext4, not attached",
			name, v.Name, v.Size, v.Device, v.Meta, e.h.Size)
	}
	for host, d := range e.hosts() {
		e.same(host+": Inspect", e.inspect(host, d, name, ""), v)
		l, ok := e.listed(host, d, name)
		if !ok {
			e.Errorf("%s: List lacks %s", host, name)
			continue
		}
		e.same(host+": List", l, v)
	}
}

// A taken name is refused, from either host, and the volume keeps its size
// and record.
func testCreateTakenName(e *env) {
	const name = "cf-taken"
	v := e.create(name)
	other := drivers.CreateOptions{Size: 2 * e.h.Size, FSType: "xfs"}
	for host, d := range e.hosts() {
		_, err := d.Create(e.ctx, name, other)
		e.is(host+": Create of a taken name", err, drivers.ErrExists)
		e.same(host+": the volume after", e.inspect(host, d, name, ""), v)
	}
}

// Names that could escape a folder or pass for a flag are refused by
// every call that takes one, before anything is made.
func testInvalidNames(e *env) {
	for _, name := range []string{"", "../x", "-x", "a/b", strings.Repeat("a", 300)} {
		label := fmt.Sprintf("%.20q", name)
		_, err := e.a.Create(e.ctx, name, e.opts())
		e.is("Create("+label+")", err, drivers.ErrInvalid)
		_, err = e.a.Inspect(e.ctx, name)
		e.is("Inspect("+label+")", err, drivers.ErrInvalid)
		_, err = e.a.Attach(e.ctx, name, false)
		e.is("Attach("+label+")", err, drivers.ErrInvalid)
		e.is("Detach("+label+")", e.a.Detach(e.ctx, name), drivers.ErrInvalid)
		e.is("Remove("+label+")", e.a.Remove(e.ctx, name), drivers.ErrInvalid)
	}
	vols, err := e.a.List(e.ctx)
	if err != nil {
		e.Fatalf("List = %v", err)
	}
	for _, v := range vols {
		if drivers.ValidateName(v.Name) != nil {
			e.Errorf("List has %q, an invalid name", v.Name)
		}
	}
}

// A volume that does not exist is not found, by any call.
func testMissing(e *env) {
	const name = "cf-missing"
	for host, d := range e.hosts() {
		_, err := d.Inspect(e.ctx, name)
		e.is(host+": Inspect of a missing volume", err, drivers.ErrNotFound)
		_, err = d.Attach(e.ctx, name, false)
		e.is(host+": Attach of a missing volume", err, drivers.ErrNotFound)
		_, err = d.Attach(e.ctx, name, true)
		e.is(host+": Attach with force of a missing volume", err, drivers.ErrNotFound)
		e.is(host+": Detach of a missing volume", d.Detach(e.ctx, name), drivers.ErrNotFound)
		e.is(host+": Remove of a missing volume", d.Remove(e.ctx, name), drivers.ErrNotFound)
	}
}

// Attach and Detach are idempotent, and a volume's device shows on the
// host it is attached to, only there.
func testAttachDetach(e *env) {
	const name = "cf-attach"
	e.create(name)
	dev := e.attach("A", e.a, name)
	e.inspect("A", e.a, name, dev)
	if l, ok := e.listed("A", e.a, name); !ok || l.Device != dev {
		e.Errorf("A: List has %s attached as %q (listed: %v), want %s", name, l.Device, ok, dev)
	}
	e.inspect("B", e.b, name, "")
	if again, err := e.a.Attach(e.ctx, name, false); err != nil || again != dev {
		e.Errorf("A: second Attach(%s) = %q, %v; want the same %s", name, again, err, dev)
	}
	if err := e.a.Detach(e.ctx, name); err != nil {
		e.Fatalf("A: Detach(%s) = %v", name, err)
	}
	e.inspect("A", e.a, name, "")
	if err := e.a.Detach(e.ctx, name); err != nil {
		e.Errorf("A: Detach(%s) of a detached volume = %v, want nil", name, err)
	}
}

// An attached volume is not removed, from either host: its device may be
// mounted. Detached, it goes from both hosts' view.
func testRemoveAttached(e *env) {
	const name = "cf-remove-attached"
	e.create(name)
	dev := e.attach("A", e.a, name)
	for host, d := range e.hosts() {
		err := d.Remove(e.ctx, name)
		if err == nil || errors.Is(err, drivers.ErrNotFound) {
			e.Errorf("%s: Remove(%s) of a volume attached to A = %v, want it refused", host, name, err)
		}
	}
	e.inspect("A", e.a, name, dev)
	if err := e.a.Detach(e.ctx, name); err != nil {
		e.Fatalf("A: Detach(%s) = %v", name, err)
	}
	if err := e.a.Remove(e.ctx, name); err != nil {
		e.Fatalf("A: Remove(%s) after its Detach = %v", name, err)
	}
	e.gone(name)
}

// lostReport is what A's Watcher reported, and what the suite did then
// on A, as the engine does: fence the device, then detach it.
type lostReport struct {
	name             string
	why              error
	fenced, detached error
}

// A volume one host holds is refused to another, saying who holds it;
// with force the other takes it, and the first host, if it watches its
// holds, is told it lost it.
func testHeldByAnotherHost(e *env) {
	const name = "cf-held"
	e.create(name)
	dev := e.attach("A", e.a, name)
	_, err := e.b.Attach(e.ctx, name, false)
	var held *drivers.HeldError
	if !errors.As(err, &held) || !errors.Is(err, drivers.ErrHeld) || held.Volume != name || held.Holder == "" {
		e.Fatalf("B: Attach(%s) of a volume A holds = %v; want a *HeldError naming the volume and its holder", name, err)
	}
	e.inspect("A", e.a, name, dev)

	reports := make(chan lostReport, 1)
	if w, ok := e.a.(drivers.Watcher); ok {
		ctx, stop := context.WithCancel(e.ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			w.Watch(ctx, func(lost string, why error) {
				r := lostReport{name: lost, why: why}
				if f, ok := e.a.(drivers.Fencer); ok {
					r.fenced = f.Fence(ctx, lost)
				}
				r.detached = e.a.Detach(ctx, lost)
				select {
				case reports <- r:
				default: // reported once already: the test fails on that one
				}
			})
		})
		defer func() { stop(); wg.Wait() }()
	} else {
		e.Logf("the %s driver is no Watcher: host A is not told it lost %s", e.a.Name(), name)
	}

	ctx, cancel := context.WithTimeout(e.ctx, e.h.LostWait)
	defer cancel()
	devB, err := e.b.Attach(ctx, name, true)
	if err != nil || devB == "" {
		e.Fatalf("B: Attach(%s) with force = %q, %v; want a device", name, devB, err)
	}
	if e.h.CheckDevice != nil {
		e.h.CheckDevice(e.T, e.b, devB)
	}
	e.inspect("B", e.b, name, devB)
	if _, ok := e.a.(drivers.Watcher); ok {
		select {
		case r := <-reports:
			if r.name != name || r.why == nil || r.fenced != nil || r.detached != nil {
				e.Errorf("A's Watcher reported %s lost (%v); fencing it: %v, detaching it: %v; want %s lost with a reason, fenced and detached",
					r.name, r.why, r.fenced, r.detached, name)
			}
		case <-ctx.Done():
			e.Fatalf("A's Watcher did not report %s lost within %s of B taking it", name, e.h.LostWait)
		}
	}
	e.inspect("A", e.a, name, "")
	if err := e.a.Detach(e.ctx, name); err != nil {
		e.Errorf("A: Detach(%s) of a volume B took = %v, want nil", name, err)
	}
	if err := e.b.Detach(e.ctx, name); err != nil {
		e.Errorf("B: Detach(%s) = %v", name, err)
	}
}

// refused checks that d, lacking capability, is refused it by drivers.As
// with an error naming it.
func (e *env) refused(d drivers.Driver, capability string, err error) {
	e.Helper()
	e.Logf("the %s driver has no %s", d.Name(), capability)
	var u *drivers.UnsupportedError
	if !errors.Is(err, drivers.ErrUnsupported) || !errors.As(err, &u) || u.Capability != capability || u.Driver != d.Name() {
		e.Errorf("drivers.As for %s = %v, want an *UnsupportedError naming the %s driver and %s", capability, err, d.Name(), capability)
	}
}

// Snapshots are copies of a volume with names unique in the platform; a
// volume can be made from one; they outlive their volume.
func testSnapshotter(e *env) {
	const vol, snap = "cf-snap-source", "cf-snap"
	s, err := drivers.As[drivers.Snapshotter](e.a, drivers.CapSnapshots)
	if err != nil {
		e.refused(e.a, drivers.CapSnapshots, err)
		_, err := e.a.Create(e.ctx, "cf-snap-copy", drivers.CreateOptions{FromSnapshot: snap})
		e.is("Create from a snapshot", err, drivers.ErrUnsupported)
		return
	}
	sb, err := drivers.As[drivers.Snapshotter](e.b, drivers.CapSnapshots)
	if err != nil {
		e.Fatalf("host B: %v", err)
	}
	v := e.create(vol)
	_, err = s.CreateSnapshot(e.ctx, vol, "../x")
	e.is("CreateSnapshot named ../x", err, drivers.ErrInvalid)
	_, err = s.CreateSnapshot(e.ctx, "cf-missing", snap)
	e.is("CreateSnapshot of a missing volume", err, drivers.ErrNotFound)

	sn, err := s.CreateSnapshot(e.ctx, vol, snap)
	if err != nil {
		e.Fatalf("A: CreateSnapshot(%s, %s) = %v", vol, snap, err)
	}
	e.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := s.RemoveSnapshot(ctx, snap); err != nil && !errors.Is(err, drivers.ErrSnapshotNotFound) {
			e.Errorf("clean up: RemoveSnapshot(%s) = %v", snap, err)
		}
	})
	if sn.Name != snap || sn.VolumeName != vol || sn.Size != v.Size || sn.CreatedAt.IsZero() {
		e.Errorf("A: CreateSnapshot = %+v; want %s of volume %s, %d bytes, created", sn, snap, vol, v.Size)
	}
	_, err = sb.CreateSnapshot(e.ctx, vol, snap)
	e.is("B: CreateSnapshot of a taken snapshot name", err, drivers.ErrSnapshotExists)

	sameSnap := func(where string, got drivers.Snapshot) {
		if got.Name != sn.Name || got.VolumeName != sn.VolumeName || got.Size != sn.Size || !got.CreatedAt.Equal(sn.CreatedAt) {
			e.Errorf("%s = %+v, want %+v", where, got, sn)
		}
	}
	listed := func(where string) {
		snaps, err := sb.Snapshots(e.ctx)
		if err != nil {
			e.Fatalf("B: Snapshots = %v", err)
		}
		i := slices.IndexFunc(snaps, func(x drivers.Snapshot) bool { return x.Name == snap })
		if i < 0 {
			e.Errorf("B: Snapshots %s lacks %s: %+v", where, snap, snaps)
			return
		}
		sameSnap("B: Snapshots "+where, snaps[i])
		got, err := sb.InspectSnapshot(e.ctx, snap)
		if err != nil {
			e.Fatalf("B: InspectSnapshot(%s) %s = %v", snap, where, err)
		}
		sameSnap("B: InspectSnapshot "+where, got)
	}
	listed("after CreateSnapshot")
	if got := e.inspect("B", e.b, vol, ""); !slices.Contains(got.Snapshots, snap) {
		e.Errorf("B: Inspect(%s) has snapshots %v, want %s among them", vol, got.Snapshots, snap)
	}

	if err := e.a.Remove(e.ctx, vol); err != nil {
		e.Fatalf("A: Remove(%s), a volume with a snapshot = %v; want it removed, the snapshot kept", vol, err)
	}
	e.gone(vol)
	listed("after its volume's Remove")

	const copyName = "cf-snap-copy"
	_, err = e.b.Create(e.ctx, copyName, drivers.CreateOptions{FromSnapshot: "cf-snap-missing"})
	e.is("B: Create from a missing snapshot", err, drivers.ErrSnapshotNotFound)
	c, err := e.b.Create(e.ctx, copyName, drivers.CreateOptions{FromSnapshot: snap})
	if err != nil {
		e.Fatalf("B: Create(%s) from snapshot %s = %v", copyName, snap, err)
	}
	e.removeAtEnd(copyName)
	if c.Size < sn.Size || c.Snapshot != snap || c.Unformatted {
		e.Errorf("B: Create from snapshot = %d bytes, %+v; want %d bytes or more, snapshot %s, not unformatted (it has the snapshot's filesystem)",
			c.Size, c.Meta, sn.Size, snap)
	}
	e.same("A: Inspect of the copy", e.inspect("A", e.a, copyName, ""), c)

	if err := s.RemoveSnapshot(e.ctx, snap); err != nil {
		e.Fatalf("A: RemoveSnapshot(%s) = %v", snap, err)
	}
	_, err = sb.InspectSnapshot(e.ctx, snap)
	e.is("B: InspectSnapshot of a removed snapshot", err, drivers.ErrSnapshotNotFound)
	e.is("B: RemoveSnapshot of a removed snapshot", sb.RemoveSnapshot(e.ctx, snap), drivers.ErrSnapshotNotFound)
	if snaps, err := sb.Snapshots(e.ctx); err != nil || slices.ContainsFunc(snaps, func(x drivers.Snapshot) bool { return x.Name == snap }) {
		e.Errorf("B: Snapshots after RemoveSnapshot(%s) = %+v, %v; want it gone", snap, snaps, err)
	}
	e.inspect("A", e.a, copyName, "")
}

// A volume grows, never shrinks.
func testExpander(e *env) {
	const name = "cf-expand"
	x, err := drivers.As[drivers.Expander](e.a, drivers.CapExpand)
	if err != nil {
		e.refused(e.a, drivers.CapExpand, err)
		return
	}
	v := e.create(name)
	grown := v.Size + e.h.Size
	got, err := x.Expand(e.ctx, name, grown)
	if err != nil || got.Size != grown {
		e.Fatalf("A: Expand(%s, %d) = %d bytes, %v", name, grown, got.Size, err)
	}
	if got := e.inspect("B", e.b, name, ""); got.Size != grown {
		e.Errorf("B: Inspect(%s) after Expand = %d bytes, want %d", name, got.Size, grown)
	}
	_, err = x.Expand(e.ctx, name, v.Size)
	e.is("Expand to a smaller size", err, drivers.ErrInvalid)
	if got, err := x.Expand(e.ctx, name, grown); err != nil || got.Size != grown {
		e.Errorf("A: Expand(%s) to its size = %d bytes, %v; want %d, nil", name, got.Size, err, grown)
	}
	if got := e.inspect("A", e.a, name, ""); got.Size != grown {
		e.Errorf("A: Inspect(%s) = %d bytes, want %d", name, got.Size, grown)
	}
	_, err = x.Expand(e.ctx, "cf-missing", grown)
	e.is("Expand of a missing volume", err, drivers.ErrNotFound)
}

// A volume one host holds attached and another grows: the holder's
// GrowthWatcher tells of it, and of no other volume, once the holder's
// device has the new size.
func testGrowthWatcher(e *env) {
	const name, other = "cf-grow-seen", "cf-grow-other"
	w, ok := e.a.(drivers.GrowthWatcher)
	if !ok {
		e.Logf("the %s driver has no growth watcher: its volumes grow where they are expanded, or at their next mount", e.a.Name())
		return
	}
	x, err := drivers.As[drivers.Expander](e.b, drivers.CapExpand)
	if err != nil {
		e.Fatalf("the %s driver watches growth but does not expand: %v", e.a.Name(), err)
	}
	v := e.create(name)
	e.create(other)
	dev := e.attach("A", e.a, name)
	e.attach("A", e.a, other)
	grown := make(chan string, 8)
	ctx, stop := context.WithCancel(e.ctx)
	defer stop()
	go w.WatchGrowth(ctx, func(name string) { grown <- name })

	size := v.Size + e.h.Size
	if _, err := x.Expand(e.ctx, name, size); err != nil {
		e.Fatalf("B: Expand(%s, %d) = %v", name, size, err)
	}
	select {
	case got := <-grown:
		if got != name {
			e.Errorf("A's watcher told of %s, want %s", got, name)
		}
	case <-time.After(e.h.LostWait):
		e.Fatalf("A's watcher did not tell of %s within %s of B's Expand", name, e.h.LostWait)
	}
	if e.h.DeviceSize == nil {
		return
	}
	if n, err := e.h.DeviceSize(dev); err != nil || n != size {
		e.Errorf("A's device %s of %s once told: %d bytes, %v; want %d", dev, name, n, err, size)
	}
}

// A new volume was never written to.
func testBlankChecker(e *env) {
	const name = "cf-blank"
	bc, err := drivers.As[drivers.BlankChecker](e.a, drivers.CapBlankCheck)
	if err != nil {
		e.refused(e.a, drivers.CapBlankCheck, err)
		return
	}
	e.create(name)
	if blank, err := bc.Blank(e.ctx, name); err != nil || !blank {
		e.Errorf("A: Blank(%s) of a new volume = %v, %v; want true", name, blank, err)
	}
	_, err = bc.Blank(e.ctx, "cf-missing")
	e.is("Blank of a missing volume", err, drivers.ErrNotFound)
}

// A filesystem recorded on one host is known to the other.
func testFormatRecorder(e *env) {
	const name = "cf-format"
	fr, err := drivers.As[drivers.FormatRecorder](e.a, drivers.CapFormatRecord)
	if err != nil {
		e.refused(e.a, drivers.CapFormatRecord, err)
		return
	}
	v := e.create(name)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := fr.RecordFormat(e.ctx, name, at); err != nil {
		e.Fatalf("A: RecordFormat(%s) = %v", name, err)
	}
	want := v
	want.Meta = v.Meta.FormatRecord(at)
	e.same("B: Inspect after RecordFormat", e.inspect("B", e.b, name, ""), want)
	e.is("RecordFormat of a missing volume", fr.RecordFormat(e.ctx, "cf-missing", at), drivers.ErrNotFound)
}

// Names are List's names.
func testNameLister(e *env) {
	if _, err := drivers.As[drivers.NameLister](e.a, drivers.CapNames); err != nil {
		e.refused(e.a, drivers.CapNames, err)
		return
	}
	made := []string{"cf-names-1", "cf-names-2"}
	for _, name := range made {
		e.create(name)
	}
	for host, d := range e.hosts() {
		nl, err := drivers.As[drivers.NameLister](d, drivers.CapNames)
		if err != nil {
			e.Fatalf("%s: %v", host, err)
		}
		names, err := nl.Names(e.ctx)
		if err != nil {
			e.Fatalf("%s: Names = %v", host, err)
		}
		vols, err := d.List(e.ctx)
		if err != nil {
			e.Fatalf("%s: List = %v", host, err)
		}
		var listed []string
		for _, v := range vols {
			listed = append(listed, v.Name)
		}
		slices.Sort(names)
		slices.Sort(listed)
		if !slices.Equal(names, listed) {
			e.Errorf("%s: Names = %v, List has %v", host, names, listed)
		}
		for _, name := range made {
			if !slices.Contains(names, name) {
				e.Errorf("%s: Names lacks %s", host, name)
			}
		}
	}
}

// Capacity is known to every host, none of it negative.
func testCapacitor(e *env) {
	if _, err := drivers.As[drivers.Capacitor](e.a, drivers.CapCapacity); err != nil {
		e.refused(e.a, drivers.CapCapacity, err)
		return
	}
	for host, d := range e.hosts() {
		c, err := drivers.As[drivers.Capacitor](d, drivers.CapCapacity)
		if err != nil {
			e.Fatalf("%s: %v", host, err)
		}
		if n, err := c.Capacity(e.ctx); err != nil || n < 0 {
			e.Errorf("%s: Capacity = %d, %v; want a size, 0 or more", host, n, err)
		}
	}
}
