package csi

import (
	"context"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/memdriver"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/metrics"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/plugin"
)

// fakeMounts is the engine's OS side in memory: what is mounted, and the
// filesystems made, which never fail.
type fakeMounts struct {
	mu      sync.Mutex
	mounted map[string]string // volume → device
}

func (f *fakeMounts) Mount(ctx context.Context, device, name string, spec mount.Spec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mounted[name] = device
	return f.Path(name), nil
}

func (f *fakeMounts) Unmount(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.mounted, name)
	return nil
}

func (f *fakeMounts) IsMounted(name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.mounted[name]
	return ok, nil
}

func (f *fakeMounts) Mounted() (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.mounted), nil
}

func (f *fakeMounts) Freeze(string) (func() error, error)       { return func() error { return nil }, nil }
func (f *fakeMounts) Fence(ctx context.Context, n string) error { return f.Unmount(ctx, n) }
func (f *fakeMounts) Busy(string) (bool, error)                 { return false, nil }
func (f *fakeMounts) Path(name string) string                   { return "/fake/mnt/" + name + "/data" }

// fakeOS keeps the binds of publications in memory.
type fakeOS struct {
	mu    sync.Mutex
	binds map[string]bind // target → what is bound there
}

type bind struct {
	source string
	opts   []string
}

func (f *fakeOS) Bind(source, target string, opts []string) error {
	if err := mount.CheckBindOptions(opts); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.binds[target]; ok {
		return fmt.Errorf("fake: %s is bound already", target)
	}
	f.binds[target] = bind{source, opts}
	return nil
}

func (f *fakeOS) Unbind(target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.binds, target)
	return nil
}

func (f *fakeOS) IsMountPoint(path string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.binds[path]
	return ok, nil
}

func (f *fakeOS) IsReadOnly(path string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.binds[path].opts, "ro"), nil
}

func (f *fakeOS) UsageOf(path string) (mount.Usage, error) {
	return mount.Usage{Bytes: 1 << 30, UsedBytes: 1 << 20, FreeBytes: 1<<30 - 1<<20, Inodes: 100, UsedInodes: 11, FreeInodes: 89}, nil
}

func (f *fakeOS) bound(target string) (bind, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.binds[target]
	return b, ok
}

// host is one rexray: an engine over a memdriver store, and the plugin's
// endpoint serving Docker's protocol and CSI on one unix socket.
type host struct {
	t      *testing.T
	eng    *engine.Engine
	srv    *Server
	os     *fakeOS
	mounts *fakeMounts
	drv    drivers.Driver
	led    *ledger.Store
	sock   string
	conn   *grpc.ClientConn
	id     spec.IdentityClient
	ctl    spec.ControllerClient
	node   spec.NodeClient
	logs   *test.Hook // every line the host logs, debug ones too
	met    *metrics.Metrics
}

// newHost serves driver d (a memdriver instance, or one wrapping it).
func newHost(t *testing.T, d drivers.Driver) *host {
	t.Helper()
	dir := t.TempDir()
	led, err := ledger.Open(filepath.Join(dir, "state"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	cfg := config.Config{FSType: "ext4", InstanceID: "a", LinuxRootPath: "/data"}
	cfg.Ops = config.Operations{MountPath: "/fake/mnt", CreateDefaultSize: "1"}
	log, hook := test.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	h := &host{t: t, os: &fakeOS{binds: map[string]bind{}}, mounts: &fakeMounts{mounted: map[string]string{}}, drv: d, led: led, logs: hook}
	h.eng = engine.New(cfg, []engine.Service{{Name: "mem", Driver: d}}, h.mounts, led, log)
	h.met = metrics.New(h.eng)
	h.eng.Observe(h.met)
	h.srv = New(Options{Engine: h.eng, Config: cfg, NodeID: "a", Version: "test", OS: h.os, Log: log, Metrics: h.met})
	p := plugin.New(h.eng, false)
	p.Record(h.met)
	p.ServeGRPC(h.srv.Handler())
	h.sock = filepath.Join(dir, "rexray.sock")
	l, err := net.Listen("unix", h.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	h.conn, err = grpc.NewClient("unix://"+h.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.conn.Close() })
	h.id, h.ctl, h.node = spec.NewIdentityClient(h.conn), spec.NewControllerClient(h.conn), spec.NewNodeClient(h.conn)
	return h
}

// memHost serves a fresh memdriver store as host "a".
func memHost(t *testing.T) *host { return newHost(t, memdriver.NewStore().Driver("a")) }

func mountCap(mode spec.VolumeCapability_AccessMode_Mode, fsType string) *spec.VolumeCapability {
	return &spec.VolumeCapability{
		AccessMode: &spec.VolumeCapability_AccessMode{Mode: mode},
		AccessType: &spec.VolumeCapability_Mount{Mount: &spec.VolumeCapability_MountVolume{FsType: fsType}},
	}
}

func blockCap() *spec.VolumeCapability {
	return &spec.VolumeCapability{
		AccessMode: &spec.VolumeCapability_AccessMode{Mode: spec.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		AccessType: &spec.VolumeCapability_Block{Block: &spec.VolumeCapability_BlockVolume{}},
	}
}

var writer = mountCap(spec.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "")

// create makes a volume through CSI, of size bytes.
func (h *host) create(name string, size int64) *spec.Volume {
	h.t.Helper()
	res, err := h.ctl.CreateVolume(context.Background(), &spec.CreateVolumeRequest{
		Name: name, VolumeCapabilities: []*spec.VolumeCapability{writer},
		CapacityRange: &spec.CapacityRange{RequiredBytes: size},
	})
	if err != nil {
		h.t.Fatalf("CreateVolume %s: %v", name, err)
	}
	return res.GetVolume()
}

func (h *host) holds(name string) []ledger.Hold {
	h.t.Helper()
	holds, err := h.led.Holds(name)
	if err != nil {
		h.t.Fatal(err)
	}
	return holds
}

func (h *host) attached(name string) bool {
	v, err := h.drv.Inspect(context.Background(), name)
	return err == nil && v.Device != ""
}

func (f *fakeMounts) Usage(name string) (mount.Usage, error) {
	return mount.Usage{Bytes: 1 << 30, UsedBytes: 1 << 20, FreeBytes: 1<<30 - 1<<20}, nil
}

func (f *fakeMounts) Grow(ctx context.Context, device, name string) error { return nil }
