package dvdcli

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	c := &Command{}
	cases := []struct {
		args []string
		want request
	}{
		{[]string{"--volumedriver=rexray", "--volumename=v", "--volumeopts=size=5", "--volumeopts=iops=150", "--explicitCreate=true"},
			request{driver: "rexray", volume: "v", opts: map[string]string{"size": "5", "iops": "150"}, explicit: true}},
		{[]string{"--volumename=v", "--explicitcreate"},
			request{driver: "rexray", volume: "v", opts: map[string]string{}, explicit: true}},
		{[]string{"--volumename=v", "--explicitcreate=false", "--volumeopts=size=5,newfstype=xfs"},
			request{driver: "rexray", volume: "v", opts: map[string]string{"size": "5", "newfstype": "xfs"}}},
		{[]string{"--volumename=v", "--volumeopts=label=a,b"},
			request{driver: "rexray", volume: "v", opts: map[string]string{"label": "a,b"}}},
	}
	for _, tc := range cases {
		got, err := c.parse("mount", tc.args, true)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parse %q = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{"--volumename=v", "--volumeopts=size"}, {"--volumedriver=rexray"}, {"--volumename=v", "--explicitCreate=maybe"}, {"--volumename=v", "extra"}, {"--volumename=v", "--unknown=1"}} {
		if _, err := c.parse("mount", bad, true); err == nil {
			t.Errorf("parse %q succeeded", bad)
		}
	}
	if _, err := c.parse("unmount", []string{"--volumename=v", "--volumeopts=size=1"}, false); err == nil {
		t.Error("unmount took --volumeopts")
	}
}

func TestFinder(t *testing.T) {
	run, etc := t.TempDir(), t.TempDir()
	f := Finder{SocketDirs: []string{run}, SpecDirs: []string{etc}}
	sock := func(path string) {
		os.MkdirAll(filepath.Dir(path), 0o755)
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
	}
	if _, err := f.Address("rexray"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("nothing there: %v", err)
	}
	sock(filepath.Join(run, "0123abcd", "rexray.sock"))
	if got, err := f.Address("rexray"); err != nil || got != "unix://"+filepath.Join(run, "0123abcd", "rexray.sock") {
		t.Errorf("managed plugin: %q, %v", got, err)
	}
	sock(filepath.Join(run, "4567ef01", "rexray.sock"))
	if _, err := f.Address("rexray"); err == nil || !strings.Contains(err.Error(), "several plugins") {
		t.Errorf("two managed plugins: %v", err)
	}
	os.WriteFile(filepath.Join(etc, "rexray.spec"), []byte("tcp://127.0.0.1:7981\n"), 0o644)
	if got, err := f.Address("rexray"); err != nil || got != "tcp://127.0.0.1:7981" {
		t.Errorf("spec file: %q, %v", got, err)
	}
	sock(filepath.Join(run, "rexray.sock"))
	if got, err := f.Address("rexray"); err != nil || got != "unix://"+filepath.Join(run, "rexray.sock") {
		t.Errorf("host mode socket first: %q, %v", got, err)
	}
	os.WriteFile(filepath.Join(etc, "tls.json"), []byte(`{"Addr":"https://h:1","TLSConfig":{}}`), 0o644)
	if _, err := f.Address("tls"); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("TLS spec: %v", err)
	}
	if _, err := f.Address("../x"); err == nil {
		t.Error("a path as the driver name was taken")
	}
	if got, _ := (Finder{Override: "/x.sock"}).Address("rexray"); got != "/x.sock" {
		t.Errorf("DVDCLI_SOCKET: %q", got)
	}
}

// Two unmounts never release one ID; an unmount with none left says so.
func TestRecords(t *testing.T) {
	r := Records{Dir: t.TempDir()}
	for _, id := range []string{"a", "b"} {
		if err := r.Add("rexray", "v", id); err != nil {
			t.Fatal(err)
		}
	}
	first, err := r.Claim("rexray", "v")
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.Claim("rexray", "v")
	if err != nil || second == first {
		t.Fatalf("second claim = %q, %v (first %q)", second, err, first)
	}
	if _, err := r.Claim("rexray", "v"); err == nil || !strings.Contains(err.Error(), "not mounted by dvdcli") {
		t.Errorf("third claim: %v", err)
	}
	r.Unclaim("rexray", "v", first)
	if again, err := r.Claim("rexray", "v"); err != nil || again != first {
		t.Errorf("claim after unclaim = %q, %v", again, err)
	}
	r.Remove("rexray", "v", first)
	r.Remove("rexray", "v", second)
	if _, err := os.Stat(filepath.Join(r.Dir, "rexray", "v")); !os.IsNotExist(err) {
		t.Errorf("records folder left: %v", err)
	}
}
