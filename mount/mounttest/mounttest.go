// Package mounttest holds test helpers for code that must tell the mounts
// of other mount namespaces from its own.
package mounttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Container is a process that holds a bind of a directory in a mount
// namespace of its own, as a container holds a volume: its namespace is a
// private copy of the caller's mounts, which later unmounts in the caller's
// namespace do not reach, and the bind stays where the caller cannot see
// it. (A copy of a mount at the same mount point would not do: removing
// the mount point directory detaches it in every namespace.)
type Container struct {
	cmd  *exec.Cmd
	dst  string
	done chan struct{}
}

// Bind starts a process that binds src at a folder of its own; the process
// ends at Stop or with the test.
func Bind(t testing.TB, src string) *Container {
	t.Helper()
	dst := t.TempDir()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private",
		"sh", "-c", `mount --bind "$1" "$2" && exec sleep 3600`, "sh", src, dst)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a process in another mount namespace: %v", err)
	}
	c := &Container{cmd: cmd, dst: dst, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()
	t.Cleanup(c.Stop)
	exe := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "exe")
	deadline := time.After(10 * time.Second)
	for {
		// sh execs sleep once the bind is made.
		if p, _ := os.Readlink(exe); filepath.Base(p) == "sleep" {
			return c
		}
		select {
		case <-c.done:
			t.Fatalf("bind %s in another mount namespace: %s", src, stderr.String())
		case <-deadline:
			t.Fatalf("bind %s in another mount namespace: not done after 10 s", src)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Dir is the bound directory as the process sees it, reached from the
// caller's namespace.
func (c *Container) Dir() string {
	return filepath.Join("/proc", strconv.Itoa(c.cmd.Process.Pid), "root", c.dst)
}

// Stop ends the process, and with it its namespace and the bind.
func (c *Container) Stop() {
	select {
	case <-c.done:
	default:
		c.cmd.Process.Kill()
		<-c.done
	}
}
