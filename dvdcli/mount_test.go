//go:build integration

package dvdcli

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/plugin"
)

// served is a real plugin (loopback store, loop devices, mkfs, mounts) on
// a unix socket in a temporary folder, and a dvdcli pointed at it.
type served struct {
	drv *loopback.Driver
	mnt *mount.Mounter
	cmd *Command
	out *bytes.Buffer
	err *bytes.Buffer
}

func servePlugin(t *testing.T) *served {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the dvdcli mount tests need root: loop devices and mounts")
	}
	dir := t.TempDir()
	cfg := config.Config{FSType: "ext4", LinuxRootPath: "/data", LinuxFileMode: 0o700}
	cfg.Ops = config.Operations{MountPath: filepath.Join(dir, "mnt"), CreateImplicit: true, CreateDefaultSize: "64MiB"}
	drv, err := loopback.New(loopback.Config{VolumePath: filepath.Join(dir, "store"), DirectIO: true, Instance: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ledger.Open(filepath.Join(dir, "state"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mnt := &mount.Mounter{Root: cfg.Ops.MountPath, DataDir: cfg.RootPath(), DataMode: 0o700}
	log := logrus.New()
	log.SetOutput(os.Stderr)
	p := plugin.New(engine.New(cfg, []engine.Service{{Name: "loopback", Driver: drv}}, mnt, st, log), true)
	sock := filepath.Join(dir, "rexray.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Serve(ctx, l)
		close(done)
	}()
	s := &served{drv: drv, mnt: mnt, out: &bytes.Buffer{}, err: &bytes.Buffer{}}
	s.cmd = &Command{
		Find:       Finder{Override: "unix://" + sock},
		IDs:        Records{Dir: filepath.Join(dir, "dvdcli")},
		DockerRoot: filepath.Join(dir, "docker"),
		MountPath:  cfg.Ops.MountPath,
		Stdout:     s.out,
		Stderr:     s.err,
	}
	t.Cleanup(func() {
		cancel()
		<-done
		ctx := context.Background()
		vols, _ := drv.List(ctx)
		for _, v := range vols {
			mnt.Unmount(ctx, v.Name)
			drv.Detach(ctx, v.Name)
		}
		st.Close()
	})
	return s
}

// run runs one dvdcli command line and returns its exit code, stdout and
// stderr.
func (s *served) run(args ...string) (int, string, string) {
	s.out.Reset()
	s.err.Reset()
	code := s.cmd.Run(context.Background(), args)
	return code, s.out.String(), s.err.String()
}

// exists tells whether the store holds the volume.
func (s *served) exists(t *testing.T, name string) bool {
	t.Helper()
	_, err := s.drv.Inspect(context.Background(), name)
	if err != nil && !errors.Is(err, drivers.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// --explicitCreate means what it meant in the original dvdcli: the mount
// is solely a mount. A missing volume fails and is not created; an
// existing one is mounted. Without it, a missing volume is created with the
// options.
func TestExplicitCreateMountsExistingVolumesOnly(t *testing.T) {
	s := servePlugin(t)
	for _, flag := range []string{"--explicitCreate=true", "--explicitcreate=true", "--explicitCreate", "--explicitcreate"} {
		code, out, errOut := s.run("mount", "--volumename=missing", "--volumeopts=size=32MiB", flag)
		if code == 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "missing") || !strings.Contains(errOut, "existing volumes only") {
			t.Errorf("mount of a missing volume with %s: exit %d, stdout %q, stderr %q; want non-zero, nothing on stdout, one line on stderr", flag, code, out, errOut)
		}
		if s.exists(t, "missing") {
			t.Fatalf("mount with %s created the missing volume", flag)
		}
	}

	code, out, errOut := s.run("mount", "--volumename=v", "--volumeopts=size=32MiB", "--explicitCreate=false")
	if code != 0 || !s.exists(t, "v") {
		t.Fatalf("mount without explicit create: exit %d, %q; the volume exists: %v", code, errOut, s.exists(t, "v"))
	}
	path := strings.TrimSpace(out)
	if out != path+"\n" || path != s.mnt.Path("v") {
		t.Errorf("mount printed %q, want only %s", out, s.mnt.Path("v"))
	}
	if v, _ := s.drv.Inspect(context.Background(), "v"); v.Size != 32<<20 {
		t.Errorf("created with size %d, want the option's 32MiB", v.Size)
	}
	for _, flag := range []string{"--explicitCreate=true", "--explicitcreate=true"} {
		code, out, errOut := s.run("mount", "--volumename=v", flag)
		if code != 0 || strings.TrimSpace(out) != path {
			t.Errorf("mount of an existing volume with %s: exit %d, stdout %q, stderr %q", flag, code, out, errOut)
		}
	}
	for range 3 {
		if code, _, errOut := s.run("unmount", "--volumename=v"); code != 0 {
			t.Fatalf("unmount: exit %d, %s", code, errOut)
		}
	}
	if mounted, _ := s.mnt.IsMounted("v"); mounted {
		t.Error("still mounted after every mount's unmount")
	}
}
