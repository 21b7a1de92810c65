//go:build integration

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexray/rexray/api"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
)

// setup points rexray's settings at a temporary store, ledger and mount
// root. It needs root: the commands attach loop devices and mount.
func setup(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the cli tests need root: loop devices and mounts")
	}
	dir := t.TempDir()
	t.Setenv("REXRAY_STATEDIR", filepath.Join(dir, "state"))
	t.Setenv("LOOPBACK_VOLUMEPATH", filepath.Join(dir, "store"))
	t.Setenv("LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PATH", filepath.Join(dir, "mnt"))
	// Unset, not empty: a set REXRAY_HOST is the only endpoint the commands
	// use. t.Setenv puts the environment's value back after the test.
	t.Setenv("REXRAY_HOST", "")
	os.Unsetenv("REXRAY_HOST")
	return dir
}

// serve runs `rexray serve` with the environment as it is until the test
// ends, and waits until it answers at addr (a unix socket path or a TCP
// host:port).
func serve(t *testing.T, network, addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan int)
	var logged bytes.Buffer
	go func() {
		c := &Command{Registry: drivers.Registry{loopback.Name: loopback.FromEnv}, Version: "test", Stdout: io.Discard, Stderr: &logged}
		served <- c.Run(ctx, []string{"serve"})
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-served; code != 0 {
			t.Errorf("serve exited %d: %s", code, logged.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial(network, addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen on %s", addr)
		}
	}
}

// run runs one command line and returns its exit code, stdout and stderr.

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := run(context.Background(), args...)
	if code != 0 {
		t.Fatalf("rexray %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// The life of a volume through the CLI, with no plugin running: the
// commands open the ledger themselves.
func TestVolumeCommandsWithoutAPlugin(t *testing.T) {
	dir := setup(t)
	mustRun(t, "volume", "create", "v", "-o", "size=32MiB")
	path := strings.TrimSpace(mustRun(t, "volume", "mount", "v"))
	if path != filepath.Join(dir, "mnt", "v", "data") {
		t.Fatalf("volume mount printed %q", path)
	}
	if err := os.WriteFile(filepath.Join(path, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "snapshot", "create", "v", "s")
	var vols []api.VolumeInfo
	if err := json.Unmarshal([]byte(mustRun(t, "volume", "ls", "--format", "json")), &vols); err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].Name != "v" || vols[0].Mountpoint != path || len(vols[0].Snapshots) != 1 {
		t.Errorf("volume ls = %+v", vols)
	}
	if out := mustRun(t, "snapshot", "ls"); !strings.Contains(out, "s ") || !strings.Contains(out, "32MiB") {
		t.Errorf("snapshot ls = %q", out)
	}
	mustRun(t, "volume", "unmount", "v")
	mustRun(t, "volume", "rm", "v")
	mustRun(t, "snapshot", "rm", "s")
	if out := mustRun(t, "volume", "ls"); strings.Count(out, "\n") != 1 {
		t.Errorf("volume ls after rm = %q, want the header only", out)
	}
}

func TestBadCommandLines(t *testing.T) {
	setup(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frob"}, 2, `unknown command "frob"`},
		{[]string{"volume"}, 1, "give one of ls, inspect"},
		{[]string{"volume", "frob", "x"}, 1, "volume frob: unknown"},
		{[]string{"volume", "create"}, 1, "takes 1 argument(s), got 0"},
		{[]string{"volume", "create", "v", "-o", "size"}, 1, "give key=value"},
		{[]string{"volume", "ls", "--format", "yaml"}, 1, "use table or json"},
		{[]string{"volume", "inspect", "nope"}, 1, "volume nope: volume not found"},
		{[]string{"volume", "create", "v", "-o", "colour=red"}, 1, `unknown option "colour"`},
		{[]string{"snapshot", "create", "v"}, 1, "takes 2 argument(s), got 1"},
	}
	for _, c := range cases {
		code, out, errOut := run(context.Background(), c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("rexray %s: exit %d, stdout %q, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, out, errOut, c.code, c.want)
		}
	}
	if out := mustRun(t, "volume", "ls"); strings.Count(out, "\n") != 1 {
		t.Errorf("bad command lines left volumes: %q", out)
	}
}

// With a plugin serving (and so holding the ledger), the commands go
// through its socket.
func TestVolumeCommandsThroughTheRunningPlugin(t *testing.T) {
	dir := setup(t)
	sock := filepath.Join(dir, "rexray.sock")
	t.Setenv("REXRAY_HOST", "unix://"+sock)
	serve(t, "unix", sock)
	mustRun(t, "volume", "create", "v", "-o", "size=32MiB")
	a := mustRun(t, "volume", "attach", "v")
	if !strings.Contains(a, "/dev/loop") {
		t.Errorf("volume attach printed %q", a)
	}
	mustRun(t, "volume", "detach", "v")
	mustRun(t, "volume", "rm", "v")
}
