// Package ceph runs Ceph's command-line tools for the rbd driver, and
// holds the two ways an image becomes a block device here: the kernel's
// mappers (krbd, rbd-nbd) and rbd-fuse with a loop device.
package ceph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/rexray/rexray/internal/command"
)

// The control plane is Ceph's own command-line tools (rbd, rados), exec'd
// with argument lists, JSON out. github.com/ceph/go-ceph would avoid a
// process per call, but the Go module proxy reachable here does not serve
// it, and the tools are needed in the rootfs anyway (rbd-fuse, rbd map).

// ToolError is a failed tool run. The rbd and rados tools exit with the
// errno of what failed (2 for ENOENT, 16 for EBUSY, 17 for EEXIST), so the
// error unwraps to that errno and callers test it with errors.Is.
type ToolError struct {
	cmd   string
	errno syscall.Errno
	msg   string
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("%s: %s", e.cmd, e.msg)
}

func (e *ToolError) Unwrap() error { return e.errno }

// Tools runs the Ceph tools with the service's extra arguments.
type Tools struct {
	// CephArgs is RBD_CEPHARGS, handed to every tool as CEPH_ARGS, which
	// librados reads on top of ceph.conf (-c, --id, --keyring, ...).
	CephArgs string
}

func (t Tools) Env(extra ...string) []string {
	args := strings.Join(append([]string{t.CephArgs}, extra...), " ")
	env := os.Environ()
	if args = strings.TrimSpace(args); args != "" {
		env = append(env, "CEPH_ARGS="+args)
	}
	return env
}

// Run runs name with args and returns its standard output. Each run is
// logged at debug level on the call's logger with its time: a tool run
// costs a process that loads librados and joins the cluster, which is
// most of a call's time where CPU is slow (an emulated VM).
func (t Tools) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = t.Env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	line := name + " " + strings.Join(args, " ")
	command.Debugf(ctx, "ceph tool: %s: %s", time.Since(start).Round(time.Millisecond), line)
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w (is the Ceph cluster reachable? check /etc/ceph/ceph.conf and RBD_CEPHARGS)", line, ctx.Err())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return nil, fmt.Errorf("%s: %w", line, err)
	}
	return nil, &ToolError{cmd: line, errno: syscall.Errno(exit.ExitCode()), msg: lastMessage(stderr.String(), exit)}
}

// RunJSON runs a tool with --format json and decodes its output into v.
func (t Tools) RunJSON(ctx context.Context, v any, name string, args ...string) error {
	out, err := t.Run(ctx, name, append(args, "--format", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("%s %s: unexpected output %.200q: %w", name, strings.Join(args, " "), out, err)
	}
	return nil
}

// lastMessage picks what the tool said of its failure: its last line naming
// the tool ("rbd: ..."), else its last line; librbd's own log lines
// (timestamped) come before it.
func lastMessage(stderr string, exit *exec.ExitError) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(l, "rbd: ") || strings.HasPrefix(l, "rados: ") || strings.HasPrefix(l, "error ") {
			return l
		}
	}
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return exit.String()
}
