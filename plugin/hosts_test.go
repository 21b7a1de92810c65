//go:build integration

package plugin

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/engine/platform"
	"github.com/rexray/rexray/mount"
)

func listed(t *testing.T, p *Plugin) []string {
	t.Helper()
	res, err := p.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range res.Volumes {
		names = append(names, v.Name)
	}
	return names
}

// What one host creates and removes in a shared store, the other lists,
// inspects and can create again: List and Get follow the store, not the
// host's own memory of it.
func TestOtherHostsVolumesFollowTheStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := t.TempDir()
	a, b := host(t, ctx, store, "a", false), host(t, ctx, store, "b", false)

	if err := a.Create(&volume.CreateRequest{Name: "shared", Options: map[string]string{"size": "64MiB"}}); err != nil {
		t.Fatal(err)
	}
	if names := listed(t, b); !slices.Contains(names, "shared") {
		t.Errorf("b lists %v, without the volume a created", names)
	}
	got, err := b.Get(&volume.GetRequest{Name: "shared"})
	if err != nil {
		t.Fatalf("b cannot inspect the volume a created: %v", err)
	}
	if size := got.Volume.Status["size"]; size != 0.0625 {
		t.Errorf("b sees size %v GB, want 0.0625", size)
	}

	if err := a.Remove(&volume.RemoveRequest{Name: "shared"}); err != nil {
		t.Fatal(err)
	}
	if names := listed(t, b); slices.Contains(names, "shared") {
		t.Errorf("b still lists the volume a removed: %v", names)
	}
	if _, err := b.Get(&volume.GetRequest{Name: "shared"}); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("b's Get of the volume a removed: %v, want not found", err)
	}
	if err := b.Create(&volume.CreateRequest{Name: "shared", Options: map[string]string{"size": "128MiB"}}); err != nil {
		t.Fatalf("b cannot create the name a removed: %v", err)
	}
	got, err = a.Get(&volume.GetRequest{Name: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	if size := got.Volume.Status["size"]; size != 0.125 {
		t.Errorf("a sees size %v GB of the volume b made, want 0.125", size)
	}
}

// hangingDriver is a store that stops answering on demand: its calls
// block until their context ends, as a hung NFS server or an unreachable
// Ceph does.
type hangingDriver struct {
	*loopback.Driver
	hang atomic.Bool
}

func (d *hangingDriver) wait(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (d *hangingDriver) List(ctx context.Context) ([]drivers.Volume, error) {
	if d.hang.Load() {
		return nil, d.wait(ctx)
	}
	return d.Driver.List(ctx)
}

func (d *hangingDriver) Names(ctx context.Context) ([]string, error) {
	if d.hang.Load() {
		return nil, d.wait(ctx)
	}
	return d.Driver.Names(ctx)
}

func (d *hangingDriver) Inspect(ctx context.Context, name string) (drivers.Volume, error) {
	if d.hang.Load() {
		return drivers.Volume{}, d.wait(ctx)
	}
	return d.Driver.Inspect(ctx, name)
}

// A store that does not answer never makes Get fail for a volume this host
// knows, nor List leave it out: the catalogue answers, and the log says so
// once, not once per call.
func TestHungPlatformLeavesTheCatalogueToAnswer(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Config{FSType: "ext4", LinuxRootPath: "/data", LinuxFileMode: 0o700}
	cfg.Ops = config.Operations{MountPath: filepath.Join(dir, "mnt"), CreateDefaultSize: "64MiB"}
	lb, err := loopback.New(loopback.Config{VolumePath: filepath.Join(dir, "store"), Instance: "a", Overcommit: true})
	if err != nil {
		t.Fatal(err)
	}
	drv := &hangingDriver{Driver: lb}
	st, err := ledger.Open(filepath.Join(dir, "state"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, hook := test.NewNullLogger()
	log.AddHook(logToTest{t})
	p := newPlugin(cfg, []engine.Service{{Name: "loopback", Driver: drv}}, &mount.Mounter{Root: cfg.Ops.MountPath, DataDir: "/data", DataMode: 0o700}, st, log)
	p.eng.Restore(context.Background())
	if err := p.Create(&volume.CreateRequest{Name: "known"}); err != nil {
		t.Fatal(err)
	}

	drv.hang.Store(true)
	var wg sync.WaitGroup
	var getErr, unknownErr error
	var names []string
	wg.Go(func() { _, getErr = p.Get(&volume.GetRequest{Name: "known"}) })
	wg.Go(func() { _, unknownErr = p.Get(&volume.GetRequest{Name: "unknown"}) })
	wg.Go(func() { names = listed(t, p) })
	wg.Wait()
	if getErr != nil {
		t.Errorf("Get of a known volume while the store hangs: %v", getErr)
	}
	if !slices.Contains(names, "known") {
		t.Errorf("List while the store hangs: %v, without the known volume", names)
	}
	if _, err := p.Get(&volume.GetRequest{Name: "known"}); err != nil {
		t.Errorf("second Get of a known volume while the store hangs: %v", err)
	}
	if !errors.Is(unknownErr, platform.ErrNoAnswer) {
		t.Errorf("Get of a volume this host never saw while the store hangs: %v, want the platform's failure", unknownErr)
	}
	warned := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, "does not answer") {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("the hung store was logged %d times over 4 calls, want once", warned)
	}
}

// logToTest copies a logger's entries to the test's log.
type logToTest struct{ t *testing.T }

func (h logToTest) Levels() []logrus.Level { return logrus.AllLevels }

func (h logToTest) Fire(e *logrus.Entry) error {
	h.t.Log(e.Level, e.Message)
	return nil
}
