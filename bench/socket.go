package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rexray/rexray/api/client"
)

// pluginProc is rexray run in host mode over folders of the benchmark's own.
type pluginProc struct {
	dir  string
	sock string
	cmd  *exec.Cmd
	cli  *client.Client
}

func startPlugin(ctx context.Context, binary, dir string, env ...string) (*pluginProc, error) {
	return startPluginAt(ctx, binary, dir, filepath.Join(dir, "rexray.sock"), env...)
}

// startPluginAt starts the plugin on the socket sock and waits until it
// is ready.
func startPluginAt(ctx context.Context, binary, dir, sock string, env ...string) (*pluginProc, error) {
	p, err := spawn(binary, dir, sock, env...)
	if err != nil {
		return nil, err
	}
	// Ready once List answers: Docker's calls wait for the restore.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := p.call(ctx, "List", vreq{}); err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("plugin did not answer on %s", p.sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spawn starts the plugin and returns at once.
func spawn(binary, dir, sock string, env ...string) (*pluginProc, error) {
	p := &pluginProc{dir: dir, sock: sock}
	p.cmd = exec.Command(binary, "serve")
	p.cmd.Env = append(os.Environ(),
		"REXRAY_HOST=unix://"+p.sock,
		"REXRAY_STATEDIR="+filepath.Join(dir, "state"),
		"LOOPBACK_VOLUMEPATH="+filepath.Join(dir, "store"),
		"LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PATH="+filepath.Join(dir, "mnt"),
		"REXRAY_LOGLEVEL="+cmp.Or(os.Getenv("BENCH_PLUGIN_LOGLEVEL"), "error"),
	)
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	p.cli = client.New(p.sock)
	return p, nil
}

func (p *pluginProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}

// rss is the plugin's resident set in MB.
func (p *pluginProc) rss() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// call posts one Docker volume API request and decodes the answer.
func (p *pluginProc) call(ctx context.Context, method string, req vreq) (*client.Response, error) {
	return p.cli.Call(ctx, method, req)
}

// timed runs one call and returns its duration.
func (p *pluginProc) timed(ctx context.Context, method string, req vreq) (time.Duration, error) {
	start := time.Now()
	_, err := p.call(ctx, method, req)
	return time.Since(start), err
}

type vreq = client.Request
