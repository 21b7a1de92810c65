//go:build integration

package integration

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rexray/rexray/internal/vboxfake"
)

// The rexray/virtualbox plugin, installed in the suite's real dockerd and
// pointed at vboxfake: a FAKE of VirtualBox's web service, served by this
// test, since VirtualBox cannot run here. What is real: the plugin build,
// push, install and settings, Docker's calls, the SOAP over HTTP. What is
// not: the service and its disks. No disk ever appears in /dev, so a mount
// is expected to fail, and to give the disk back.

const vboxPlugin = "rexray/virtualbox:latest"

func TestVirtualBox(t *testing.T) {
	fake := vboxfake.New()
	fake.Username, fake.Password = "vbox", "secret"
	// This host's VM has this host's MAC address, so the plugin (on the
	// host network) finds its machine by MAC as in a real guest.
	self := fake.AddMachine("docker-vm", hostMACs(t), "SATA", 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fake}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	pdir := filepath.Join(suite.dir, "plugin-virtualbox")
	mk := exec.Command("make", "-C", suite.repo, "plugin", "DRIVER=virtualbox", "PLUGIN_DIR="+pdir)
	mk.Env = append(os.Environ(), "DOCKER_HOST=")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make plugin DRIVER=virtualbox: %v\n%s", err, out)
	}
	state := filepath.Join(suite.dir, "vbox-state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	ref := suite.registry + "/rexray/virtualbox:test"
	for _, s := range [][]string{{"plugin", "create", ref, pdir}, {"plugin", "push", ref}, {"plugin", "rm", ref}} {
		mustDocker(t, s...)
	}
	t.Cleanup(func() {
		suite.docker("plugin", "disable", "-f", vboxPlugin)
		suite.docker("plugin", "rm", "-f", vboxPlugin)
	})
	// Installed without the volume path, the plugin starts and says what
	// to set; set, it serves.
	mustDocker(t, "plugin", "install", "--grant-all-permissions", "--alias", vboxPlugin, ref,
		"VIRTUALBOX_ENDPOINT=http://"+ln.Addr().String(), "VIRTUALBOX_USERNAME=vbox", "VIRTUALBOX_PASSWORD=secret",
		"VIRTUALBOX_DEVICEWAIT=1s", "state.source="+state, "REXRAY_LOGLEVEL=info")
	_, err = suite.docker("volume", "create", "--driver", vboxPlugin, "early")
	if err == nil || !strings.Contains(err.Error(), "VIRTUALBOX_VOLUMEPATH is not set") {
		t.Fatalf("create before VIRTUALBOX_VOLUMEPATH is set: %v", err)
	}
	mustDocker(t, "plugin", "disable", vboxPlugin)
	mustDocker(t, "plugin", "set", vboxPlugin, "VIRTUALBOX_VOLUMEPATH=/Users/me/VirtualBox/Volumes")
	mustDocker(t, "plugin", "enable", vboxPlugin)

	// The seed's own example.
	mustDocker(t, "volume", "create", "--driver="+vboxPlugin, "--name=vbox2", "--opt=size=2")
	media := fake.Media()
	if len(media) != 1 || media[0].Location != "/Users/me/VirtualBox/Volumes/vbox2.vmdk" || media[0].Size != 2<<30 {
		t.Fatalf("the fake holds %+v, want one 2 GiB vbox2.vmdk under the volume path", media)
	}

	var vols []struct {
		Driver string
		Status struct {
			Size   float64
			Server string
			Fields map[string]string
		}
	}
	if err := json.Unmarshal([]byte(mustDocker(t, "volume", "inspect", "vbox2")), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("inspect vbox2: %v %+v", err, vols)
	}
	st := vols[0].Status
	if vols[0].Driver != vboxPlugin || st.Size != 2 || st.Server != self || st.Fields["mediumID"] != media[0].ID ||
		st.Fields["location"] != media[0].Location {
		t.Fatalf("inspect vbox2: %+v; want size 2, server %s (found by MAC), the medium's ID and location", vols[0], self)
	}

	mustDocker(t, "volume", "create", "--driver", vboxPlugin, "-o", "volumeName=vbox2", "vbox3")
	ls := strings.Split(mustDocker(t, "volume", "ls", "--format", "{{.Driver}} {{.Name}}"), "\n")
	for _, name := range []string{"vbox2", "vbox3"} {
		if !slices.Contains(ls, vboxPlugin+" "+name) {
			t.Errorf("volume ls lacks %s: %q", name, ls)
		}
	}

	for _, bad := range []struct{ opt, want string }{
		{"size=lots", "size"},
		{"snapshotName=s1", "snapshot"},
	} {
		_, err := suite.docker("volume", "create", "--driver", vboxPlugin, "-o", bad.opt, "badvol")
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("create -o %s: %v, want an error about %s", bad.opt, err, bad.want)
		}
		t.Logf("create -o %s: %v", bad.opt, err)
	}
	if n := len(fake.Media()); n != 2 {
		t.Errorf("%d media after the refused creates, want 2", n)
	}

	// vbox3, attached to no machine, grows through the plugin; a shrink is
	// refused and changes nothing.
	id := mustDocker(t, "plugin", "inspect", "--format", "{{.Id}}", vboxPlugin)
	if out, err := runRexray(id, nil, "volume", "resize", "vbox3", "3GiB"); err != nil {
		t.Fatalf("rexray volume resize vbox3 3GiB: %v\n%s", err, out)
	}
	if _, err := runRexray(id, nil, "volume", "resize", "vbox3", "1GiB"); err == nil || !strings.Contains(err.Error(), "shrinking is refused") {
		t.Errorf("resize vbox3 to 1GiB: %v; want shrinking refused", err)
	}
	if i := slices.IndexFunc(fake.Media(), func(m vboxfake.Medium) bool { return strings.HasSuffix(m.Location, "/vbox3.vmdk") && m.Size == 3<<30 }); i < 0 {
		t.Errorf("the fake holds %+v after the resize, want vbox3.vmdk of 3 GiB", fake.Media())
	}
	if size := mustDocker(t, "volume", "inspect", "--format", "{{.Status.size}}", "vbox3"); size != "3" {
		t.Errorf("inspect vbox3 after the resize: size %s GB, want 3", size)
	}

	// A mount reaches VirtualBox (the fake attaches the disk), then waits
	// for a disk that cannot appear here, and gives it back.
	_, err = suite.docker("run", "--rm", "-v", "vbox2:/data", "busybox:latest", "true")
	if err == nil || !strings.Contains(err.Error(), "appeared in this guest within 1s") {
		t.Errorf("mount of vbox2: %v; want the wait for its disk to time out", err)
	}
	t.Logf("mount of vbox2: %v", err)
	if n := fake.Calls("IMachine_attachDevice"); n != 1 {
		t.Errorf("attachDevice called %d times, want 1", n)
	}
	if got := fake.Attached(self); len(got) != 0 {
		t.Errorf("left attached after the failed mount: %v", got)
	}

	mustDocker(t, "volume", "rm", "vbox2", "vbox3")
	if m := fake.Media(); len(m) != 0 {
		t.Fatalf("media left after volume rm: %+v", m)
	}
	if n := fake.Logons(); n != 2 {
		t.Errorf("%d logons to the web service, want one for each of the plugin's two starts", n)
	}
}

// hostMACs are this host's MAC addresses as VirtualBox writes them.
func hostMACs(t *testing.T) []string {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var macs []string
	for _, i := range ifs {
		if len(i.HardwareAddr) == 6 {
			macs = append(macs, strings.ToUpper(strings.ReplaceAll(i.HardwareAddr.String(), ":", "")))
		}
	}
	if len(macs) == 0 {
		t.Fatal("this host has no MAC address to find its VM by")
	}
	return macs
}
