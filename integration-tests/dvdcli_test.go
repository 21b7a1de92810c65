//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dvdcli runs a dvdcli command line as mesos-module-dvdi does, through a
// link named dvdcli to the binary, with the host plugin's records folder.
func (h *hostPlugin) dvdcli(t *testing.T, link string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(link, args...)
	cmd.Env = append(os.Environ(), "DVDCLI_STATEDIR="+filepath.Join(h.dir, "dvdcli"))
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestDvdcli: the command lines mesos-module-dvdi runs, against a
// host-mode plugin found by its socket in /run/docker/plugins.
func TestDvdcli(t *testing.T) {
	h := startHostPlugin(t, "rexray-dvd")
	link := filepath.Join(t.TempDir(), "dvdcli")
	if err := os.Symlink(filepath.Join(suite.repo, "bin", "rexray"), link); err != nil {
		t.Fatal(err)
	}
	drv := "--volumedriver=" + h.name
	mount := func(args ...string) string {
		t.Helper()
		out, errOut, err := h.dvdcli(t, link, append([]string{"mount", drv}, args...)...)
		if err != nil {
			t.Fatalf("dvdcli mount %q: %v: %s", args, err, errOut)
		}
		if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "/") {
			t.Fatalf("dvdcli mount printed %q, want only the path", out)
		}
		return strings.TrimSpace(out)
	}
	unmount := func(vol string) {
		t.Helper()
		if _, errOut, err := h.dvdcli(t, link, "unmount", drv, "--volumename="+vol); err != nil {
			t.Fatalf("dvdcli unmount %s: %v: %s", vol, err, errOut)
		}
	}

	// Two tasks on one agent, one volume: the second mount counts, the
	// first unmount leaves it mounted, the second releases it.
	path := mount("--volumename=vol1", "--volumeopts=size=1", "--volumeopts=newfstype=xfs", "--explicitCreate=false")
	if err := os.WriteFile(filepath.Join(path, "f"), []byte("task one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if again := mount("--volumename=vol1"); again != path {
		t.Errorf("second task's path %q, want %q", again, path)
	}
	unmount("vol1")
	if b, err := os.ReadFile(filepath.Join(path, "f")); string(b) != "task one" {
		t.Fatalf("after the first task's unmount: %q, %v", b, err)
	}
	unmount("vol1")
	if mps := mountsUnder(h.dir); len(mps) != 0 {
		t.Errorf("mounted after the last unmount: %v", mps)
	}
	if loops := loopsUnder(h.dir); len(loops) != 0 {
		t.Errorf("attached after the last unmount: %v", loops)
	}
	if _, errOut, err := h.dvdcli(t, link, "unmount", drv, "--volumename=vol1"); err == nil || !strings.Contains(errOut, "not mounted by dvdcli") {
		t.Errorf("a third unmount: %v, %q", err, errOut)
	}

	// With explicit create, as in the original dvdcli, a mount is solely a
	// mount: a missing volume fails, in either spelling, and is not made.
	for _, flag := range []string{"--explicitCreate=true", "--explicitcreate=true"} {
		out, errOut, err := h.dvdcli(t, link, "mount", drv, "--volumename=vol2", "--volumeopts=size=1", flag)
		if err == nil || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "vol2") {
			t.Errorf("dvdcli mount %s of a missing volume: %v, stdout %q, stderr %q; want non-zero, nothing on stdout, one line on stderr", flag, err, out, errOut)
		}
		if out, err := h.rexray("volume", "ls"); err != nil || strings.Contains(out, "vol2") {
			t.Fatalf("after dvdcli mount %s of a missing volume, rexray volume ls: %q, %v; want no vol2", flag, out, err)
		}
	}

	// DVDI_VOLUME_OPTS=size=1,iops=150,volumetype=io1,newfstype=xfs,overwritefs=true
	// arrive as repeated --volumeopts.
	path = mount("--volumename=vol2", "--volumeopts=size=1", "--volumeopts=iops=150", "--volumeopts=volumetype=io1",
		"--volumeopts=newfstype=xfs", "--volumeopts=overwritefs=true")
	if err := os.WriteFile(filepath.Join(path, "g"), []byte("task two"), 0o600); err != nil {
		t.Fatal(err)
	}
	var vols []struct {
		IOPS   int64
		Type   string
		FSType string
	}
	if out, err := h.rexray("volume", "inspect", "vol2", "--format", "json"); err != nil || json.Unmarshal([]byte(out), &vols) != nil || len(vols) != 1 {
		t.Fatalf("rexray volume inspect vol2: %q, %v", out, err)
	}
	if v := vols[0]; v.IOPS != 150 || v.Type != "io1" || v.FSType != "xfs" {
		t.Errorf("vol2 is %+v, want iops 150, type io1, fsType xfs", v)
	}
	unmount("vol2")
	// An existing volume mounts with explicit create: the module's
	// spelling through the link, the original's through `rexray dvdcli`.
	if again := mount("--volumename=vol2", "--explicitCreate=true"); again != path {
		t.Errorf("dvdcli mount --explicitCreate=true of vol2 printed %q, want %q", again, path)
	}
	out, errOut, err := h.dvdcli(t, filepath.Join(suite.repo, "bin", "rexray"), "dvdcli", "mount", drv, "--volumename=vol2", "--explicitcreate=true")
	if err != nil || out != path+"\n" {
		t.Fatalf("rexray dvdcli mount --explicitcreate=true: %q, %v, %s", out, err, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(path, "g")); string(b) != "task two" {
		t.Errorf("vol2 holds %q after the mounts with explicit create", b)
	}
	unmount("vol2")
	unmount("vol2")
	if mps := mountsUnder(h.dir); len(mps) != 0 {
		t.Errorf("mounted after the last unmount of vol2: %v", mps)
	}

	// A failure: non-zero, a message on stderr, nothing on stdout.
	out, errOut, err = h.dvdcli(t, link, "mount", drv, "--volumename=bad/name")
	if err == nil || out != "" || !strings.Contains(errOut, "bad/name") {
		t.Errorf("mount of a bad name: %v, stdout %q, stderr %q", err, out, errOut)
	}
	out, errOut, err = h.dvdcli(t, link, "mount", "--volumedriver=nosuchdriver", "--volumename=v")
	if err == nil || out != "" || !strings.Contains(errOut, `volume driver "nosuchdriver" not found`) {
		t.Errorf("mount with an unknown driver: %v, stdout %q, stderr %q", err, out, errOut)
	}
	for _, v := range []string{"vol1", "vol2"} {
		if _, err := h.rexray("volume", "rm", v); err != nil {
			t.Error(err)
		}
	}
}

// testDvdcliManaged: mesos-module-dvdi's command lines against the managed
// plugin, found as dvdcli finds it (its socket under /run/docker/plugins/ID),
// print the host's path to the volume (under dockerd's data root), not the
// path inside the plugin.
func testDvdcliManaged(t *testing.T) {
	id := mustDocker(t, "plugin", "inspect", "--format", "{{.Id}}", plugin)
	link := filepath.Join(t.TempDir(), "dvdcli")
	if err := os.Symlink(filepath.Join(suite.repo, "bin", "rexray"), link); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(suite.dir, "d", "root")
	dvdcli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(link, args...)
		cmd.Env = append(os.Environ(), "DVDCLI_STATEDIR="+filepath.Join(suite.dir, "dvdcli-managed"), "DOCKER_ROOT="+root)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("dvdcli %s: %v: %s", strings.Join(args, " "), err, e.String())
		}
		return o.String()
	}
	out := dvdcli("mount", "--volumedriver=rexray", "--volumename=mesosvol", "--volumeopts=size=64MiB")
	path := strings.TrimSpace(out)
	want := filepath.Join(root, "plugins", id, "propagated-mount", "volumes", "mesosvol", "data")
	if out != path+"\n" || path != want {
		t.Fatalf("dvdcli mount printed %q, want only the host path %s", out, want)
	}
	if err := os.WriteFile(inEngine(filepath.Join(path, "task")), []byte("from a mesos task"), 0o600); err != nil {
		t.Fatal(err)
	}
	dvdcli("unmount", "--volumedriver=rexray", "--volumename=mesosvol")
	if got := mustDocker(t, "run", "--rm", "-v", "mesosvol:/data", "busybox", "cat", "/data/task"); got != "from a mesos task" {
		t.Fatalf("a container reads %q", got)
	}
	mustDocker(t, "volume", "rm", "mesosvol")
}

// docker111 speaks Docker 1.11's volume plugin protocol, the one the
// original dvdcli vendors: POST /<method> with its Accept header, and
// Mount and Unmount carrying the volume's name only.
type docker111 struct{ http *http.Client }

func newDocker111(sock string) docker111 {
	return docker111{&http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}}
}

// call posts body and returns the answer's Err (a plugin's error) and
// Mountpoint.
func (d docker111) call(t *testing.T, method, body string) (errText, mountpoint string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://plugin/"+method, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.docker.plugins.v1.2+json")
	resp, err := d.http.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ Err, Mountpoint string }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: answer %d %q: %v", method, body, resp.StatusCode, b, err)
	}
	if (resp.StatusCode == http.StatusOK) != (out.Err == "") {
		t.Errorf("%s %s: status %d with Err %q", method, body, resp.StatusCode, out.Err)
	}
	return out.Err, out.Mountpoint
}

// TestDocker111Protocol: the calls the original dvdcli makes for `mount`
// (Activate, Get, Create, Mount with no ID) and `unmount` (Get, Unmount with
// no ID), on the real plugin: the volume is mounted for the legacy holder,
// written to, and released by the Unmount; a second round finds the data.
func TestDocker111Protocol(t *testing.T) {
	h := startHostPlugin(t, "rexray-111")
	d := newDocker111(h.sock)
	if e, _ := d.call(t, "Plugin.Activate", ""); e != "" {
		t.Fatalf("Activate: %s", e)
	}
	name := `{"Name":"oldvol"}`
	if e, _ := d.call(t, "VolumeDriver.Get", name); !strings.Contains(e, "not found") {
		t.Fatalf("Get of a missing volume: Err %q, want not found", e)
	}
	if e, _ := d.call(t, "VolumeDriver.Create", `{"Name":"oldvol","Opts":{"size":"64MiB"}}`); e != "" {
		t.Fatalf("Create: %s", e)
	}
	for round, want := range []string{"", "from docker 1.11"} {
		if round > 0 {
			if e, _ := d.call(t, "VolumeDriver.Get", name); e != "" {
				t.Fatalf("Get: %s", e)
			}
		}
		e, path := d.call(t, "VolumeDriver.Mount", name)
		if e != "" || path == "" {
			t.Fatalf("round %d: Mount with no ID: Err %q, Mountpoint %q", round, e, path)
		}
		b, _ := os.ReadFile(filepath.Join(path, "f"))
		if string(b) != want {
			t.Errorf("round %d: the volume holds %q, want %q", round, b, want)
		}
		if err := os.WriteFile(filepath.Join(path, "f"), []byte("from docker 1.11"), 0o600); err != nil {
			t.Fatal(err)
		}
		var vols []struct{ MountIDs []string }
		if out, err := h.rexray("volume", "inspect", "oldvol", "--format", "json"); err != nil || json.Unmarshal([]byte(out), &vols) != nil || len(vols) != 1 {
			t.Fatalf("rexray volume inspect oldvol: %q, %v", out, err)
		}
		if ids := fmt.Sprint(vols[0].MountIDs); ids != "[rexray:legacy]" {
			t.Errorf("round %d: held by %s, want the one legacy holder [rexray:legacy]", round, ids)
		}
		if e, _ := d.call(t, "VolumeDriver.Get", name); e != "" {
			t.Fatalf("Get: %s", e)
		}
		if e, _ := d.call(t, "VolumeDriver.Unmount", name); e != "" {
			t.Fatalf("round %d: Unmount with no ID: %s", round, e)
		}
		if mps := mountsUnder(h.dir); len(mps) != 0 {
			t.Errorf("round %d: mounted after the Unmount: %v", round, mps)
		}
		if loops := loopsUnder(h.dir); len(loops) != 0 {
			t.Errorf("round %d: loop devices still attached after the Unmount: %v", round, loops)
		}
	}
	if e, _ := d.call(t, "VolumeDriver.Remove", name); e != "" {
		t.Errorf("Remove: %s", e)
	}
}
