//go:build integration

package plugin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers/loopback"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/mount"
)

// host is one plugin of two sharing a store, as two Docker hosts do.
func host(t *testing.T, ctx context.Context, store, id string, preempt bool) *Plugin {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Config{FSType: "ext4", LinuxRootPath: "/data", LinuxFileMode: 0o700, Preempt: preempt}
	cfg.Ops = config.Operations{MountPath: filepath.Join(dir, "mnt"), CreateImplicit: true, CreateDefaultSize: "64MiB"}
	drv, err := loopback.New(loopback.Config{VolumePath: store, DirectIO: true, LeaseTTL: 5 * time.Second, Instance: id, Overcommit: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ledger.Open(filepath.Join(dir, "state"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mnt := &mount.Mounter{Root: cfg.Ops.MountPath, DataDir: "/data", DataMode: 0o700}
	log := logrus.New()
	log.SetOutput(testWriter{t})
	p := newPlugin(cfg, []engine.Service{{Name: "loopback", Driver: drv}}, mnt, st, log.WithField("host", id))
	p.eng.Run(ctx)
	t.Cleanup(func() {
		vols, _ := drv.List(context.Background())
		for _, v := range vols {
			mnt.Unmount(context.Background(), v.Name)
			drv.Detach(context.Background(), v.Name)
		}
		st.Close()
	})
	return p
}

// Host a writes and fsyncs numbered lines; host b preempts the volume. From
// then on a's writes fail, and b sees a clean filesystem holding every line
// whose fsync succeeded on a.
func TestPreemptFencesTheOldHolder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := t.TempDir()
	a := host(t, ctx, store, "a", false)
	b := host(t, ctx, store, "b", true)
	a.Create(&volume.CreateRequest{Name: "v", Options: map[string]string{"size": "64MiB"}})
	res, err := a.Mount(&volume.MountRequest{Name: "v", ID: "ca"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(res.Mountpoint, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	synced := 0
	write := func() error {
		if _, err := fmt.Fprintf(f, "line %d\n", synced+1); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		synced++
		return nil
	}
	for range 20 {
		if err := write(); err != nil {
			t.Fatal(err)
		}
	}

	// Without preempt, a third host is refused at once.
	c := host(t, ctx, store, "c", false)
	if _, err := c.Mount(&volume.MountRequest{Name: "v", ID: "cc"}); err == nil || !strings.Contains(err.Error(), "attached to host a") {
		t.Errorf("mount on c = %v, want refused naming host a", err)
	}

	start := time.Now()
	got, err := b.Mount(&volume.MountRequest{Name: "v", ID: "cb"})
	if err != nil {
		t.Fatalf("preempting mount on b: %v", err)
	}
	t.Logf("b took the volume in %s", time.Since(start))
	if err := write(); err == nil {
		t.Error("a's write and fsync succeeded after b took the volume")
	}
	info, err := a.Volume(context.Background(), "v")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.MountIDs) != 0 {
		t.Errorf("a's ledger still holds %v", info.MountIDs)
	}
	if info.Mountpoint != "" {
		t.Error("still mounted on a")
	}
	data, err := os.ReadFile(filepath.Join(got.Mountpoint, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n < synced || !strings.HasPrefix(string(data), "line 1\n") {
		t.Errorf("b sees %d lines, a synced %d", n, synced)
	}
	if err := b.Unmount(&volume.UnmountRequest{Name: "v", ID: "cb"}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("fsck.ext4", "-n", "-f", filepath.Join(store, "volumes", "v.img")).CombinedOutput()
	if err != nil {
		t.Errorf("fsck after the takeover: %v\n%s", err, out)
	}
}

// Two hosts mounting a new name at once (implicit create, as dockerd sends
// Mount for `docker run -v new:/data`) make one volume, never two, and
// only one of them gets it.
func TestImplicitCreateRaceMakesOneVolume(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := t.TempDir()
	hosts := []*Plugin{host(t, ctx, store, "a", false), host(t, ctx, store, "b", false)}
	defer func() {
		for i, p := range hosts {
			p.Unmount(&volume.UnmountRequest{Name: "fresh", ID: fmt.Sprintf("c%d", i)})
		}
	}()
	errs := make(chan error, 2)
	for i, p := range hosts {
		go func() {
			_, err := p.Mount(&volume.MountRequest{Name: "fresh", ID: fmt.Sprintf("c%d", i)})
			errs <- err
		}()
	}
	var failed []error
	for range hosts {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("%d of 2 mounts failed (%v); want exactly one to get the volume", len(failed), failed)
	}
	if msg := failed[0].Error(); !strings.Contains(msg, "attached to host") {
		t.Errorf("the loser was told %q", msg)
	}
	imgs, _ := filepath.Glob(filepath.Join(store, "volumes", "*.img"))
	if len(imgs) != 1 {
		t.Errorf("store holds %v", imgs)
	}
}
