package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	t.Setenv("LINUX_VOLUME_FILEMODE", "0755")
	t.Setenv("LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_REMOVE_DISABLE", "true")
	t.Setenv("LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_CREATE_DEFAULT_FSTYPE", "xfs")
	t.Setenv("LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PREEMPT", "true")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if os.FileMode(c.LinuxFileMode) != 0o755 || !c.Ops.RemoveDisable || !c.Preempting() {
		t.Errorf("config %+v", c)
	}
	if c.Ops.MountPath != DefaultMountPath {
		t.Errorf("mount path %s, want DefaultMountPath %s", c.Ops.MountPath, DefaultMountPath)
	}
	if c.DefaultFSType() != "xfs" || c.RootPath() != "/data" || c.Ops.CreateDefaultSize != "16" || !c.Ops.CreateImplicit {
		t.Errorf("defaults: fs %s root %s size %s implicit %v", c.DefaultFSType(), c.RootPath(), c.Ops.CreateDefaultSize, c.Ops.CreateImplicit)
	}
}

func TestFileModeIsOctal(t *testing.T) {
	t.Setenv("LINUX_VOLUME_FILEMODE", "0999")
	if _, err := FromEnv(); err == nil {
		t.Error("0999 accepted as a file mode")
	}
}

func TestFileModeRefusesSpecialBits(t *testing.T) {
	for _, m := range []string{"4777", "2755", "1777", "7777"} {
		t.Setenv("LINUX_VOLUME_FILEMODE", m)
		_, err := FromEnv()
		if err == nil || !strings.Contains(err.Error(), "setuid, setgid or sticky") || !strings.Contains(err.Error(), "0000 to 0777") {
			t.Errorf("LINUX_VOLUME_FILEMODE=%s: got %v, want a refusal naming the special bits and the accepted range", m, err)
		}
	}
	t.Setenv("LINUX_VOLUME_FILEMODE", "0777")
	if c, err := FromEnv(); err != nil || os.FileMode(c.LinuxFileMode) != 0o777 {
		t.Errorf("0777: %v, mode %o", err, c.LinuxFileMode)
	}
}

func TestDescribeHidesSecrets(t *testing.T) {
	t.Setenv("VB_PASSWORD", "hunter2")
	spec := struct {
		User     string `envconfig:"USERNAME"`
		Password string `envconfig:"PASSWORD" secret:"true"`
		Token    string `envconfig:"TOKEN" secret:"true"`
	}{User: "me", Password: "hunter2"}
	got := Describe("vb", spec)
	want := []Setting{
		{Name: "VB_USERNAME", Value: "me", Source: "default"},
		{Name: "VB_PASSWORD", Value: "(set, not shown)", Source: "env"},
		{Name: "VB_TOKEN", Value: "", Source: "default"},
	}
	if len(got) != len(want) {
		t.Fatalf("Describe = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("setting %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// REXRAY_HOST names an absolute socket path or a TCP address; a relative
// socket path is refused with the value and what is accepted.
func TestEndpoint(t *testing.T) {
	for host, want := range map[string][2]string{
		"unix:///run/docker/plugins/rexray.sock": {"unix", "/run/docker/plugins/rexray.sock"},
		"unix:///run//x/../rexray.sock":          {"unix", "/run/rexray.sock"},
		"tcp://127.0.0.1:7981":                   {"tcp", "127.0.0.1:7981"},
		"tcp://:7981":                            {"tcp", ":7981"},
	} {
		network, addr, err := Config{Host: host}.Endpoint()
		if err != nil || network != want[0] || addr != want[1] {
			t.Errorf("Endpoint(%q) = %s %s, %v; want %s %s", host, network, addr, err, want[0], want[1])
		}
	}
	for _, host := range []string{"unix://relative.sock", "unix://run/rexray.sock", "unix://", "tcp://", "tcp://host", "/x.sock", "http://x:1"} {
		_, _, err := Config{Host: host}.Endpoint()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("REXRAY_HOST=%q", host)) || !strings.Contains(err.Error(), "unix:///path/to.sock") && !strings.Contains(err.Error(), "tcp://host:port") {
			t.Errorf("Endpoint(%q) = %v, want a refusal naming the value and what is accepted", host, err)
		}
	}
	if _, _, err := (Config{Host: "unix://relative.sock"}).Endpoint(); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("unix://relative.sock: %v, want it refused as not absolute", err)
	}
}

func TestPlatformWait(t *testing.T) {
	c, err := FromEnv()
	if err != nil || time.Duration(c.PlatformWait) != 5*time.Second {
		t.Errorf("default REXRAY_PLATFORM_WAIT: %v, %v; want 5s", time.Duration(c.PlatformWait), err)
	}
	t.Setenv("REXRAY_PLATFORM_WAIT", "15s")
	if c, err := FromEnv(); err != nil || time.Duration(c.PlatformWait) != 15*time.Second {
		t.Errorf("REXRAY_PLATFORM_WAIT=15s: %v, %v", time.Duration(c.PlatformWait), err)
	}
	for _, bad := range []string{"500ms", "21s", "1m", "5", "soon"} {
		t.Setenv("REXRAY_PLATFORM_WAIT", bad)
		_, err := FromEnv()
		if err == nil || !strings.Contains(err.Error(), "REXRAY_PLATFORM_WAIT") || !strings.Contains(err.Error(), "from 1s to 20s") {
			t.Errorf("REXRAY_PLATFORM_WAIT=%s: got %v, want a refusal naming the setting and the accepted range", bad, err)
		}
	}
}
