//go:build integration && emulated

package integration

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArm64Plugin: make release pushes the amd64 and arm64 plugins, and
// the arm64 one (run through qemu-user in binfmt_misc: make test-arm64)
// is installed from the registry and serves a volume's life on a real
// dockerd, mkfs included.
func TestArm64Plugin(t *testing.T) {
	const alias = "rexray/loopback-arm64:latest"
	pdir := filepath.Join(suite.repo, "build", "release", "loopback-arm64")
	store, state := filepath.Join(suite.dir, "arm64-store"), filepath.Join(suite.dir, "arm64-state")
	for _, d := range []string{store, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	timed(t, "make release (loopback, amd64 and arm64)", func() {
		mk := exec.Command("make", "-C", suite.repo, "release", "REGISTRY="+suite.registry,
			"RELEASE_DRIVERS=loopback", "VERSION=test")
		mk.Env = append(os.Environ(), "DOCKER_HOST="+suite.host)
		out, err := mk.CombinedOutput()
		if err != nil {
			t.Fatalf("make release: %v\n%s", err, out)
		}
		for _, arch := range []string{"amd64", "arm64"} {
			if want := suite.registry + "/rexray/loopback:test-" + arch; !strings.Contains(string(out), want+"\n") {
				t.Errorf("make release did not report pushing %s:\n%s", want, out)
			}
		}
	})
	for _, f := range []string{"usr/bin/rexray", "sbin/mke2fs", "sbin/mkfs.xfs", "sbin/blkid"} {
		if m := machine(t, filepath.Join(pdir, "rootfs", f)); m != elf.EM_AARCH64 {
			t.Fatalf("%s in the plugin's rootfs is for %v, want arm64 (EM_AARCH64)", f, m)
		}
	}
	ref := suite.registry + "/rexray/loopback:test-arm64"
	t.Cleanup(func() {
		suite.docker("plugin", "disable", "-f", alias)
		suite.docker("plugin", "rm", "-f", alias)
		if loops := loopsUnder(store); len(loops) > 0 {
			t.Errorf("loop devices left on the arm64 plugin's store: %v", loops)
		}
	})
	timed(t, "install and enable", func() {
		mustDocker(t, "plugin", "install", "--grant-all-permissions", "--alias", alias, ref,
			"store.source="+store, "state.source="+state, "REXRAY_LOGLEVEL=info")
	})
	for _, fs := range []string{"ext4", "xfs"} {
		vol := "arm-" + fs
		image := filepath.Join(store, "volumes", vol+".img")
		timed(t, fs+": create (1 GiB)", func() {
			mustDocker(t, "volume", "create", "--driver", alias, "-o", "size=1", "-o", "newfstype="+fs, vol)
		})
		timed(t, fs+": first mount (mkfs) + write", func() {
			mustDocker(t, "run", "--rm", "--network", "none", "-v", vol+":/data", "busybox", "sh", "-c", "echo written on arm64 > /data/f && sync")
		})
		timed(t, fs+": mount + read", func() {
			if out := mustDocker(t, "run", "--rm", "--network", "none", "-v", vol+":/data", "busybox", "cat", "/data/f"); out != "written on arm64" {
				t.Errorf("read %q, want %q", out, "written on arm64")
			}
		})
		if out := mustDocker(t, "volume", "inspect", "--format", "{{.Status.fields.fsType}}", vol); out != fs {
			t.Errorf("Status fields.fsType %q, want %s", out, fs)
		}
		timed(t, fs+": remove", func() { mustDocker(t, "volume", "rm", vol) })
		if _, err := os.Stat(image); !os.IsNotExist(err) {
			t.Errorf("%s's image is still in the store after docker volume rm: %v", vol, err)
		}
	}
	start := time.Now()
	mustDocker(t, "plugin", "disable", alias)
	t.Logf("timing: disable took %s", time.Since(start).Round(time.Millisecond))
}

// machine is the architecture an ELF file is built for.
func machine(t *testing.T, path string) elf.Machine {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Machine
}
