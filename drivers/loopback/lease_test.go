//go:build integration

package loopback

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopdev"
)

// hosts gives two drivers, instances h1 and h2, over one store, as two
// hosts sharing a filesystem see it.
func hosts(t *testing.T, ttl time.Duration) (*Driver, *Driver) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("loop devices need root")
	}
	store := t.TempDir()
	var ds []*Driver
	for _, id := range []string{"h1", "h2"} {
		d, err := New(Config{VolumePath: store, DirectIO: true, LeaseTTL: ttl, Instance: id})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
		t.Cleanup(func() {
			vols, _ := d.List(context.Background())
			for _, v := range vols {
				if v.Device != "" {
					loopdev.Detach(v.Device)
				}
			}
		})
	}
	if _, err := ds[0].Create(context.Background(), "v", drivers.CreateOptions{Size: 16 * mib}); err != nil {
		t.Fatal(err)
	}
	return ds[0], ds[1]
}

func TestLeaseRefusesAnotherHost(t *testing.T) {
	ctx := context.Background()
	h1, h2 := hosts(t, 10*time.Second)
	dev1, err := h1.Attach(ctx, "v", false)
	if err != nil {
		t.Fatal(err)
	}
	// One kernel, two instances: h2 must not take h1's loop device for
	// its own.
	v, err := h2.Inspect(ctx, "v")
	if err != nil || v.Device != "" || v.Fields["attachedTo"] != "h1" {
		t.Errorf("h2's inspect = device %q, attachedTo %q, %v; want no device of its own, attached to h1", v.Device, v.Fields["attachedTo"], err)
	}
	_, err = h2.Attach(ctx, "v", false)
	var held *drivers.HeldError
	if !errors.As(err, &held) || held.Holder != "host h1" || held.Until.IsZero() || !strings.Contains(err.Error(), "volume v is attached to host h1") {
		t.Errorf("h2's attach = %v, want the volume held by host h1 with its lease", err)
	}
	if err := h2.Remove(ctx, "v"); err == nil || !strings.Contains(err.Error(), "attached to host h1") {
		t.Errorf("h2's remove = %v", err)
	}
	if again, err := h1.Attach(ctx, "v", false); err != nil || again != dev1 {
		t.Errorf("h1 attaching again = %s, %v; want %s", again, err, dev1)
	}
	if err := h1.Detach(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.Attach(ctx, "v", false); err != nil {
		t.Fatalf("h2's attach after h1 detached: %v", err)
	}
	if err := h2.Detach(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h2.leasePath("v")); !os.IsNotExist(err) {
		t.Errorf("lease left after detach: %v", err)
	}
	if v, _ := h1.Inspect(ctx, "v"); v.Fields["attachedTo"] != "" {
		t.Errorf("a detached volume is shown attached to %q", v.Fields["attachedTo"])
	}
}

// With preempt, h2 asks; h1's watcher reports the volume lost, h1 lets go
// (as the plugin does after fencing), and h2 gets it.
func TestPreemptAsksTheHolder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h1, h2 := hosts(t, 10*time.Second)
	if _, err := h1.Attach(ctx, "v", false); err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 1)
	go h1.Watch(ctx, func(name string, why error) {
		h1.Detach(ctx, name)
		lost <- why
	})
	start := time.Now()
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	if _, err := h2.Attach(actx, "v", true); err != nil {
		t.Fatalf("h2's preempting attach: %v", err)
	}
	t.Logf("preempted in %s", time.Since(start))
	if why := <-lost; why == nil || !strings.Contains(why.Error(), "host h2 preempted it") {
		t.Errorf("h1 was told %v", why)
	}
	if _, err := os.Stat(h2.preemptPath("v")); !os.IsNotExist(err) {
		t.Errorf("preempt request left: %v", err)
	}
	if err := h2.Detach(ctx, "v"); err != nil {
		t.Fatal(err)
	}
}

// A holder that takes longer to fence than its lease has left keeps the
// lease until it lets the volume go: the preempting host never mounts
// while the holder may still write.
func TestPreemptedHolderKeepsItsLeaseUntilItLetsGo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const ttl = 2 * time.Second
	h1, h2 := hosts(t, ttl)
	if _, err := h1.Attach(ctx, "v", false); err != nil {
		t.Fatal(err)
	}
	detached := make(chan time.Time, 1)
	go h1.Watch(ctx, func(name string, why error) {
		go func() { // as the engine fences: beside Watch
			time.Sleep(ttl * 3 / 2) // a slow fence
			detached <- time.Now()
			h1.Detach(ctx, name)
		}()
	})
	actx, acancel := context.WithTimeout(ctx, 4*ttl)
	defer acancel()
	if _, err := h2.Attach(actx, "v", true); err != nil {
		t.Fatalf("h2's preempting attach: %v", err)
	}
	attached := time.Now()
	select {
	case at := <-detached:
		if attached.Before(at) {
			t.Errorf("h2 attached at %s, before h1 let the volume go at %s", attached.Format(time.StampMilli), at.Format(time.StampMilli))
		}
	default:
		t.Error("h2 attached while h1 was still fencing")
	}
	if err := h2.Detach(ctx, "v"); err != nil {
		t.Fatal(err)
	}
}

// A holder that stops renewing (it died) loses the volume when its lease
// runs out, without preempt.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	ctx := context.Background()
	h1, h2 := hosts(t, time.Second)
	dev, err := h1.Attach(ctx, "v", false)
	if err != nil {
		t.Fatal(err)
	}
	loopdev.Detach(dev) // h1's host died: its device is gone, its lease stays
	if _, err := h2.Attach(ctx, "v", false); err == nil {
		t.Fatal("h2 took a live lease")
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := h2.Attach(ctx, "v", false); err != nil {
		t.Fatalf("h2's attach after h1's lease ran out: %v", err)
	}
	if err := h2.Detach(ctx, "v"); err != nil {
		t.Fatal(err)
	}
}

// A holder whose lease was taken (it was stalled past the TTL) learns it at
// its next renewal.
func TestWatchReportsALeaseTaken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h1, _ := hosts(t, time.Second)
	if _, err := h1.Attach(ctx, "v", false); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(h1.leasePath("v"), []byte(`{"holder":"h2","expires":"2999-01-01T00:00:00Z"}`), 0o600)
	lost := make(chan error, 1)
	go h1.Watch(ctx, func(name string, why error) { lost <- why })
	select {
	case why := <-lost:
		if !errors.Is(why, errLost) {
			t.Errorf("h1 was told %v", why)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("h1 did not notice its lease was taken")
	}
	os.Remove(h1.leasePath("v"))
	h1.Detach(ctx, "v")
}

// A holder stalled past its own lease (a hung store) does not renew it on
// waking: another host may be breaking it at that moment. It gives the
// volume up instead.
func TestStalledHolderDoesNotRenewAnExpiredLease(t *testing.T) {
	ctx := context.Background()
	h1, _ := hosts(t, time.Second)
	dev, err := h1.Attach(ctx, "v", false)
	if err != nil {
		t.Fatal(err)
	}
	defer loopdev.Detach(dev)
	time.Sleep(1100 * time.Millisecond) // no renewal: as if the store hung
	before, err := os.ReadFile(h1.leasePath("v"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = h1.renew("v")
	if !errors.Is(err, errLost) || !strings.Contains(err.Error(), "ran out") {
		t.Fatalf("renewal of an expired lease = %v, want it lost, saying the lease ran out", err)
	}
	if after, _ := os.ReadFile(h1.leasePath("v")); string(after) != string(before) {
		t.Errorf("the expired lease was rewritten: %s, then %s", before, after)
	}
}

// A holder whose renewal hangs in the store (an NFS server that stopped
// answering or is recalling a delegation) gives the volume up before its
// lease runs out, though the renewal has not returned.
func TestHungRenewalFencesBeforeTheLeaseRunsOut(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h1, h2 := hosts(t, 3*time.Second)
	dev, err := h1.Attach(ctx, "v", false)
	if err != nil {
		t.Fatal(err)
	}
	defer loopdev.Detach(dev)
	l, ok, err := h2.readLease("v")
	if err != nil || !ok {
		t.Fatalf("h2 reads no lease of h1: %v", err)
	}
	h1.leaseMu.Lock() // every renewal from now on waits, as on a hung store
	lost := make(chan error, 1)
	go h1.Watch(ctx, func(name string, why error) { lost <- why })
	select {
	case why := <-lost:
		if now := time.Now(); !now.Before(l.Expires) {
			t.Errorf("h1 gave the volume up at %s, after its lease ran out at %s", now.UTC().Format(time.RFC3339Nano), l.Expires.Format(time.RFC3339Nano))
		}
		if !strings.Contains(why.Error(), "not been renewed") {
			t.Errorf("h1 was told %v, want that its lease has not been renewed", why)
		}
	case <-time.After(10 * time.Second):
		t.Error("h1 kept the volume while its renewals hung")
	}
	h1.leaseMu.Unlock()
}
