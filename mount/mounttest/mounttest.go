// Package mounttest holds test helpers for code that must tell the mounts
// of other mount namespaces from its own.
package mounttest

import (
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
	dst := t.TempDir() // before the namespace is made, so it has it
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "3600")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a process in another mount namespace: %v", err)
	}
	c := &Container{cmd: cmd, dst: dst, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()
	t.Cleanup(c.Stop)
	pid := strconv.Itoa(cmd.Process.Pid)
	exe := filepath.Join("/proc", pid, "exe")
	deadline := time.After(10 * time.Second)
	// unshare execs sleep once the namespace is made.
	for p, _ := os.Readlink(exe); filepath.Base(p) != "sleep"; p, _ = os.Readlink(exe) {
		select {
		case <-c.done:
			t.Fatal("the process in another mount namespace ended at once")
		case <-deadline:
			t.Fatal("no process in another mount namespace after 10 s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	out, err := exec.Command("nsenter", "--target", pid, "--mount", "mount", "--bind", src, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("bind %s in another mount namespace: %v: %s", src, err, out)
	}
	return c
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
