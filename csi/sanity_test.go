//go:build integration

package csi

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/moby/sys/mountinfo"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers/loopback"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/plugin"
)

// notOffered names the sanity specs that are skipped, each for a
// capability rexray does not advertise (31 specs of csi-test v5.6.0):
//   - PUBLISH_UNPUBLISH_VOLUME: ControllerPublishVolume (7, the attach
//     limit and PUBLISH_READONLY checked through it among them), the
//     volume lifecycle (2) and ControllerUnpublishVolume (1). Every
//     driver attaches a volume from the host that uses it, at
//     NodeStageVolume: no controller can attach it to another host.
//   - MODIFY_VOLUME: ModifyVolume (6), and CreateVolume with a volume
//     attribute class (2).
//   - GET_VOLUME_HEALTH, LIST_VOLUME_HEALTH, node GET_VOLUME_HEALTH and
//     GET_STORAGE_HEALTH: ControllerGetVolumeHealth (2),
//     ControllerListVolumeHealth (1), NodeGetVolumeHealth (2),
//     NodeGetStorageHealth (1).
//   - GROUP_CONTROLLER_SERVICE: the GroupController specs (6).
//   - SNAPSHOT_ACCESSIBILITY_CONSTRAINTS (no topology): CreateSnapshot
//     with accessibility requirements (1).
var notOffered = []string{
	"ControllerPublishVolume",
	"ControllerUnpublishVolume",
	"volume lifecycle",
	"ModifyVolume",
	"should create volume with a volume attribute class",
	"should not create volume with an invalid volume attribute class",
	"ControllerGetVolumeHealth",
	"ControllerListVolumeHealth",
	"NodeGetVolumeHealth",
	"NodeGetStorageHealth",
	"GroupController Service",
	"should succeed when creating a snapshot with accessibility requirements",
}

// TestSanity holds rexray, serving the loopback driver on real loop
// devices, to csi-test's sanity suite over the plugin's socket: every
// spec passes but those of notOffered, which are skipped.
func TestSanity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the loopback driver needs root: loop devices, mkfs and mounts")
	}
	dir := t.TempDir()
	sock := serveLoopback(t, dir)

	var reports []types.SpecReport
	ginkgo.ReportAfterSuite("rexray's account of the suite", func(r ginkgo.Report) {
		reports = r.SpecReports
	})
	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + sock
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.TestVolumeSize = 1 << 30
	sanity.Test(t, cfg)

	var passed, skipped int
	for _, r := range reports {
		if r.LeafNodeType != types.NodeTypeIt {
			continue
		}
		switch r.State {
		case types.SpecStatePassed:
			passed++
		case types.SpecStateSkipped:
			skipped++
			t.Logf("skipped: %s (%s)", r.FullText(), r.Failure.Message)
			if !slices.ContainsFunc(notOffered, func(n string) bool { return strings.Contains(r.FullText(), n) }) {
				t.Errorf("skipped: %q (%s), which is not for a capability rexray does not offer", r.FullText(), r.Failure.Message)
			}
		}
	}
	t.Logf("sanity: %d specs passed, %d skipped (capabilities not offered)", passed, skipped)
	if passed == 0 {
		t.Error("no sanity spec passed")
	}
}

// serveLoopback serves a loopback store in dir, as `rexray serve` does, on
// a socket it returns.
func serveLoopback(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.InstanceID = "sanity"
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Ops.MountPath = filepath.Join(dir, "volumes")
	drv, err := loopback.New(loopback.Config{VolumePath: filepath.Join(dir, "store"), DirectIO: true, Instance: cfg.InstanceID})
	if err != nil {
		t.Fatal(err)
	}
	led, err := ledger.Open(cfg.StateDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	mnt := &mount.Mounter{Root: cfg.Ops.MountPath, DataDir: cfg.RootPath(), DataMode: 0o700}
	eng := engine.New(cfg, []engine.Service{{Name: "loopback", Driver: drv}}, mnt, led, log)
	srv := New(Options{Engine: eng, Config: cfg, NodeID: cfg.InstanceID, Version: "sanity", Log: log})
	p := plugin.New(eng, false)
	p.ServeGRPC(srv.Handler())
	sock := filepath.Join(dir, "rexray.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		<-served
		led.Close()
		// Whatever a failed spec left is released: no loop device or
		// mount outlives the test.
		left, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		slices.SortFunc(left, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) })
		for _, m := range left {
			t.Errorf("left mounted: %s", m.Mountpoint)
			unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
		}
		vols, _ := drv.List(context.Background())
		for _, v := range vols {
			if v.Device != "" {
				t.Errorf("left attached: %s as %s", v.Name, v.Device)
			}
			drv.Detach(context.Background(), v.Name)
		}
		drv.DetachOrphans(context.Background())
	})
	return sock
}
