//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVM: hack/vm.sh boots Debian's cloud kernel under qemu with the
// host's userland as a read-only root, and runs a command as root: the
// modules this host's kernel lacks load, /tmp is writable, the checkout
// is at its path, the command's output and status come back, and on the
// project's test network the VM reaches the bridge.
func TestVM(t *testing.T) {
	t.Run("KernelPathsAndStatus", func(t *testing.T) {
		script := fmt.Sprintf(`set -e
uname -r
for m in rbd nbd dm_crypt nfs nfsd; do modprobe "$m"; done
grep -oE '^(rbd|nbd|dm_crypt|nfs|nfsd) ' /proc/modules | sort | tr -d ' ' | tr '\n' ,
echo
if touch /etc/rexray-vm-test 2>/dev/null; then echo "root is writable"; exit 1; fi
echo written > /tmp/f && cat /tmp/f
test -f %s/go.mod && echo checkout
exit 7`, suite.repo)
		out, code := vm(t, nil, "bash", "-c", script)
		if code != 7 {
			t.Fatalf("vm.sh exited %d, want the command's 7; output:\n%s", code, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 4 || !strings.HasSuffix(lines[0], "-cloud-amd64") ||
			lines[1] != "dm_crypt,nbd,nfs,nfsd,rbd," || lines[2] != "written" || lines[3] != "checkout" {
			t.Errorf("vm.sh output:\n%s\nwant the cloud kernel, dm_crypt,nbd,nfs,nfsd,rbd loaded, written, checkout", out)
		}
	})
	t.Run("TestNetwork", func(t *testing.T) {
		ns := fmt.Sprintf("rxvm%d", os.Getpid())
		for _, args := range [][]string{
			{"netns", "add", ns},
			{"-n", ns, "link", "add", "br0", "type", "bridge"},
			{"-n", ns, "addr", "add", "10.213.99.1/24", "dev", "br0"},
			{"-n", ns, "link", "set", "br0", "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				exec.Command("ip", "netns", "del", ns).Run()
				t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		defer exec.Command("ip", "netns", "del", ns).Run()
		out, code := vm(t, []string{"--net", ns, "--ip", "10.213.99.2/24"}, "busybox", "ping", "-c", "1", "-W", "5", "10.213.99.1")
		if code != 0 || !strings.Contains(out, "1 packets received") {
			t.Errorf("ping from the VM to the bridge: status %d\n%s", code, out)
		}
		if links, _ := exec.Command("ip", "-n", ns, "-o", "link", "show", "type", "tun").Output(); len(bytes.TrimSpace(links)) > 0 {
			t.Errorf("vm.sh left its tap behind:\n%s", links)
		}
	})
}

// vmTimeout bounds one VM: past it vm.sh is sent SIGTERM, on which it
// stops qemu and virtiofsd and removes its tap.
const vmTimeout = 5 * time.Minute

// vm runs hack/vm.sh with flags and a command, and returns its standard
// output and exit status.
func vm(t *testing.T, flags []string, command ...string) (string, int) {
	t.Helper()
	args := append(append(flags, "--"), command...)
	c, cancel := context.WithTimeout(context.Background(), vmTimeout)
	defer cancel()
	cmd := exec.CommandContext(c, filepath.Join(suite.repo, "hack", "vm.sh"), args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("timing: hack/vm.sh %s took %s", strings.Join(command, " "), time.Since(start).Round(100*time.Millisecond))
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("hack/vm.sh: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("hack/vm.sh stderr:\n%s", stderr.String())
	}
	return stdout.String(), cmd.ProcessState.ExitCode()
}
