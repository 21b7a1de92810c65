package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// startup is section 9: the plugin killed (kill -9) and started again
// over a store of b.startupVolumes volumes, b.startupMounted of them mounted
// for containers. Two moments are timed from the process's start, as
// dockerd and users see them: its first answer (Plugin.Activate, the
// first thing dockerd asks, answered as soon as the socket listens) and
// ready, when Docker's calls are let through because the restore is done
// (List answers: every Docker call waits for the restore). RSS is read at
// ready. Each restart must find every mounted volume still held, or the
// section fails: a fast start that dropped them would be no figure.
func (b *bench) startup() error {
	dir, err := b.bigStore(b.startupVolumes)
	if err != nil {
		return err
	}
	p, err := startPlugin(b.ctx, b.binary, dir)
	if err != nil {
		return err
	}
	// Cleanup, whatever happens: the containers' namespace goes first, so
	// that the plugin's last Unmounts detach the devices.
	var holder *exec.Cmd
	defer func() {
		if holder != nil {
			holder.Process.Kill()
			holder.Wait()
		}
		for i := range b.startupMounted {
			p.call(b.ctx, "Unmount", vreq{Name: b.mountedName(i), ID: containerID(i)})
		}
		p.stop()
	}()
	var paths []string
	for i := range b.startupMounted {
		res, err := p.call(b.ctx, "Mount", vreq{Name: b.mountedName(i), ID: containerID(i)})
		if err != nil {
			return err
		}
		paths = append(paths, res.Mountpoint)
	}
	if holder, err = holdMounts(b.ctx, b.scratch("startup-containers"), paths); err != nil {
		return err
	}
	var first, ready, rss []float64
	for range b.runs {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		f, r, np, err := b.restart(dir)
		if err != nil {
			return err
		}
		p = np
		m, err := p.rss()
		if err != nil {
			return err
		}
		if err := b.checkHeld(p); err != nil {
			return err
		}
		first, ready, rss = append(first, ms(f)), append(ready, ms(r)), append(rss, m)
	}
	sec := "9 startup"
	label := fmt.Sprintf("%d volumes, %d mounted", b.big.have, b.startupMounted)
	b.rep.add(sec, "start to first answer (Plugin.Activate), "+label, "ms", first).Target = "<= 1000 ms"
	b.rep.add(sec, "start to ready (restore done: List answers), "+label, "ms", ready).Target = "<= 3000 ms"
	b.rep.add(sec, "RSS at ready, "+label, "MB", rss).Target = "<= 40 MB"
	return nil
}

// mountedName is the i-th mounted volume's, spread over the store.
func (b *bench) mountedName(i int) string {
	return bigName(i * (b.startupVolumes / b.startupMounted))
}

func containerID(i int) string { return fmt.Sprintf("c%03d", i) }

// restart starts the plugin and times its first answer and its ready.
func (b *bench) restart(dir string) (first, ready time.Duration, p *pluginProc, err error) {
	start := time.Now()
	p, err = spawn(b.binary, dir, filepath.Join(dir, "rexray.sock"))
	if err != nil {
		return 0, 0, nil, err
	}
	deadline := start.Add(60 * time.Second)
	for activateOnce(b.ctx, p.sock) != nil {
		if time.Now().After(deadline) {
			p.stop()
			return 0, 0, nil, fmt.Errorf("plugin did not answer on %s", p.sock)
		}
		time.Sleep(time.Millisecond)
	}
	first = time.Since(start)
	for {
		if _, err = p.call(b.ctx, "List", vreq{}); err == nil {
			return first, time.Since(start), p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return 0, 0, nil, fmt.Errorf("plugin not ready on %s: %w", p.sock, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkHeld fails unless List shows every mounted volume with its mount
// point, as dockerd sees volumes in use.
func (b *bench) checkHeld(p *pluginProc) error {
	res, err := p.call(b.ctx, "List", vreq{})
	if err != nil {
		return err
	}
	mp := map[string]string{}
	for _, v := range res.Volumes {
		mp[v.Name] = v.Mountpoint
	}
	if len(mp) != b.big.have {
		return fmt.Errorf("after a restart List has %d volumes, want %d", len(mp), b.big.have)
	}
	for i := range b.startupMounted {
		if mp[b.mountedName(i)] == "" {
			return fmt.Errorf("after a restart %s, mounted for a container, has no mount point", b.mountedName(i))
		}
	}
	return nil
}

// holdMounts holds each of paths as a container holds its volume: bound
// at a folder of its own (dockerd binds the Mountpoint into the
// container's root) in a mount namespace of its own, where the plugin's
// unmount and its removal of its mount point do not reach. One process
// and its namespace stand for all the containers; killing it ends them.
func holdMounts(ctx context.Context, dir string, paths []string) (*exec.Cmd, error) {
	script := "set -e\n"
	for i, p := range paths {
		dst := filepath.Join(dir, containerID(i))
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return nil, err
		}
		script += fmt.Sprintf("mount --bind %q %q\n", p, dst)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "3600")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a process in another mount namespace: %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	pid := strconv.Itoa(cmd.Process.Pid)
	// unshare execs sleep once the namespace is made.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if p, _ := os.Readlink("/proc/" + pid + "/exe"); filepath.Base(p) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("no process in another mount namespace after 10 s")
		}
	}
	if _, err := run(ctx, "nsenter", "--target", pid, "--mount", "sh", "-c", script); err != nil {
		stop()
		return nil, fmt.Errorf("bind the volumes in another mount namespace: %w", err)
	}
	return cmd, nil
}

// activateOnce asks a plugin's socket for Plugin.Activate, the first thing
// dockerd asks, and fails unless it answers that it is a volume driver.
func activateOnce(ctx context.Context, sock string) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plugin/Plugin.Activate", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("Plugin.Activate on %s: %w", sock, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("Plugin.Activate on %s: %w", sock, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "VolumeDriver") {
		return fmt.Errorf("Plugin.Activate on %s: %s: %s", sock, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// activate is activateOnce with a short timeout, for a plugin that should
// be running already.
func activate(ctx context.Context, sock string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return activateOnce(ctx, sock)
}
