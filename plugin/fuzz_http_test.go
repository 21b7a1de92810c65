//go:build integration

package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/options"
	"github.com/rexray/rexray/plugin/listen"

	"github.com/rexray/rexray/drivers"
)

// apiServer is a plugin answering on a unix socket through Serve, the way
// dockerd reaches it.
type apiServer struct {
	http *http.Client
}

// serveAPI serves a new plugin over the rig's parts on a socket in the rig's
// folder until the test ends. The plugin replaces r.p, so that calls made
// directly and through the socket share one set of volume locks.
func serveAPI(r *rig, logTo io.Writer) *apiServer {
	r.t.Helper()
	log := logrus.New()
	log.SetOutput(logTo)
	r.p = newPlugin(r.cfg, []engine.Service{{Name: "loopback", Driver: r.drv}}, r.mnt, r.st, log)
	sock := filepath.Join(r.dir, "rexray.sock")
	l, err := listen.Listen(config.Config{Host: "unix://" + sock}, log)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.p.Serve(ctx, l) }()
	api := &apiServer{http: &http.Client{
		// Every call the tests make answers in milliseconds. One that
		// waits for a lock nobody will release would answer only when the
		// plugin's own bound (opTimeout) runs out: that is a hang too.
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
	}}
	r.t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			r.t.Errorf("Serve: %v", err)
		}
		api.http.CloseIdleConnections()
	})
	return api
}

// post sends body to path as dockerd does and returns the status and answer.
func (a *apiServer) post(path string, body []byte) (int, []byte, error) {
	resp, err := a.http.Post("http://plugin"+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}

// apiPaths are the endpoints dockerd calls.
var apiPaths = []string{
	"/Plugin.Activate",
	"/VolumeDriver.Create",
	"/VolumeDriver.Remove",
	"/VolumeDriver.Mount",
	"/VolumeDriver.Unmount",
	"/VolumeDriver.Path",
	"/VolumeDriver.Get",
	"/VolumeDriver.List",
	"/VolumeDriver.Capabilities",
}

// apiRequest decodes body as the endpoint at path does, into the request
// type of the go-plugins-helpers volume package. ok is false when the
// endpoint reads no body or the body does not decode, so nothing was done.
func apiRequest(path string, body []byte) (req any, ok bool) {
	switch path {
	case "/VolumeDriver.Create":
		req = &volume.CreateRequest{}
	case "/VolumeDriver.Remove":
		req = &volume.RemoveRequest{}
	case "/VolumeDriver.Mount":
		req = &volume.MountRequest{}
	case "/VolumeDriver.Unmount":
		req = &volume.UnmountRequest{}
	case "/VolumeDriver.Path":
		req = &volume.PathRequest{}
	case "/VolumeDriver.Get":
		req = &volume.GetRequest{}
	default:
		return nil, false
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(req); err != nil {
		return nil, false
	}
	return req, true
}

// requestStrings are the strings of a request that could name a file.
func requestStrings(req any) []string {
	switch req := req.(type) {
	case *volume.CreateRequest:
		s := []string{req.Name}
		for k, v := range req.Options {
			s = append(s, k, v)
		}
		return s
	case *volume.RemoveRequest:
		return []string{req.Name}
	case *volume.MountRequest:
		return []string{req.Name, req.ID}
	case *volume.UnmountRequest:
		return []string{req.Name, req.ID}
	case *volume.PathRequest:
		return []string{req.Name}
	case *volume.GetRequest:
		return []string{req.Name}
	}
	return nil
}

// escapes lists where a file named by s would land if the plugin joined s,
// unchecked, to one of its folders or to the working or temp directory:
// anywhere but directly inside one of the plugin's folders, where a volume's
// files belong.
func (r *rig) escapes(s string) []string {
	if s == "" || len(s) > 4096 || strings.ContainsRune(s, 0) {
		return nil
	}
	wd, _ := os.Getwd()
	own := []string{filepath.Join(r.dir, "store", "volumes"), r.cfg.Ops.MountPath, filepath.Join(r.dir, "state")}
	var paths []string
	for _, base := range append([]string{os.TempDir(), "/", wd}, own...) {
		for _, suffix := range []string{"", ".img", ".json"} {
			p := filepath.Join(base, s+suffix)
			if slices.Contains(own, base) && (filepath.Dir(p) == base || p == base) {
				continue
			}
			paths = append(paths, p)
		}
	}
	return paths
}

// absent returns those of paths that do not exist.
func absent(paths []string) []string {
	var gone []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			gone = append(gone, p)
		}
	}
	return gone
}

// checkAnswer checks one answer as dockerd reads it: JSON always, a
// non-empty Err when the status is not 200, and on success what the
// endpoint promises.
func (r *rig) checkAnswer(t *testing.T, path string, body []byte, status int, answer []byte) {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(answer, &fields); err != nil {
		t.Fatalf("%s %q: answer %d %q is not a JSON object: %v", path, body, status, answer, err)
	}
	var errMsg string
	if raw, ok := fields["Err"]; ok {
		if err := json.Unmarshal(raw, &errMsg); err != nil {
			t.Fatalf("%s %q: Err in %q is not a string", path, body, answer)
		}
	}
	if status != http.StatusOK {
		if strings.TrimSpace(errMsg) == "" {
			t.Fatalf("%s %q: answer %d %q has no Err", path, body, status, answer)
		}
		return
	}
	if errMsg != "" {
		t.Fatalf("%s %q: status 200 with Err %q", path, body, errMsg)
	}
	req, _ := apiRequest(path, body)
	var res struct {
		Implements   []string
		Mountpoint   string
		Volume       *volume.Volume
		Volumes      []*volume.Volume
		Capabilities volume.Capability
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		t.Fatalf("%s %q: answer %q: %v", path, body, answer, err)
	}
	switch path {
	case "/Plugin.Activate":
		if len(res.Implements) != 1 || res.Implements[0] != "VolumeDriver" {
			t.Errorf("Activate = %q", answer)
		}
	case "/VolumeDriver.Mount":
		name := req.(*volume.MountRequest).Name
		if res.Mountpoint != r.mnt.Path(name) {
			t.Errorf("Mount %q = %q, want %s", body, answer, r.mnt.Path(name))
		}
		if mounted, err := r.mnt.IsMounted(name); err != nil || !mounted {
			t.Errorf("Mount %q succeeded, but %s is not mounted (%v)", body, r.mnt.Target(name), err)
		}
	case "/VolumeDriver.Path":
		name := req.(*volume.PathRequest).Name
		if res.Mountpoint != "" && res.Mountpoint != r.mnt.Path(name) {
			t.Errorf("Path %q = %q, want %s or nothing", body, answer, r.mnt.Path(name))
		}
	case "/VolumeDriver.Get":
		name := req.(*volume.GetRequest).Name
		if res.Volume == nil || res.Volume.Name != name {
			t.Errorf("Get %q = %q", body, answer)
		}
	case "/VolumeDriver.List":
		for _, v := range res.Volumes {
			if err := drivers.ValidateName(v.Name); err != nil {
				t.Errorf("List = %q: %v", answer, err)
			}
		}
	case "/VolumeDriver.Capabilities":
		if res.Capabilities.Scope != "global" {
			t.Errorf("Capabilities = %q, want scope global", answer)
		}
	}
}

// reset releases and removes every volume, so that each fuzz input starts
// from an empty plugin and a crasher replays alone. What remains in the
// store or under the mount root after that was leaked by the input.
func (r *rig) reset(t *testing.T) {
	ctx := context.Background()
	mounted, err := r.mnt.Mounted()
	if err != nil {
		t.Fatal(err)
	}
	for name := range mounted {
		if err := r.mnt.Unmount(ctx, name); err != nil {
			t.Error(err)
		}
	}
	vols, err := r.drv.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if err := r.mnt.Unmount(ctx, v.Name); err != nil {
			t.Error(err)
		}
		if err := r.drv.Detach(ctx, v.Name); err != nil {
			t.Error(err)
		}
		if err := r.drv.Remove(ctx, v.Name); err != nil {
			t.Error(err)
		}
	}
	counts, err := r.st.HeldVolumes()
	if err != nil {
		t.Fatal(err)
	}
	for name := range counts {
		if err := r.st.ClearHolds(name); err != nil {
			t.Error(err)
		}
	}
	names, err := r.st.VolumeNames()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := r.st.DeleteVolume(name); err != nil {
			t.Error(err)
		}
	}
	for _, dir := range []string{filepath.Join(r.dir, "store", "volumes"), r.cfg.Ops.MountPath} {
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("left in %s after every volume was removed: %s", dir, e.Name())
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// maxFuzzSize bounds the volumes a fuzz input may create: formatting a
// large one takes seconds, and the fuzzer would spend its time in mkfs.
const maxFuzzSize = 320 << 20

// FuzzHTTPHandlers sends three requests of any body to any of the plugin's
// endpoints through its socket. Every answer is JSON, a failure carries its
// reason, a success keeps the endpoint's promise, no call hangs or kills
// the plugin, and no request makes a file anywhere a name could point.
func FuzzHTTPHandlers(f *testing.F) {
	r := newRig(f)
	// Small volumes: implicit creates are formatted in milliseconds.
	r.cfg.Ops.CreateDefaultSize = "16MiB"
	api := serveAPI(r, io.Discard)
	f.Fuzz(func(t *testing.T, op1 uint8, body1 string, op2 uint8, body2 string, op3 uint8, body3 string) {
		defer r.reset(t)
		steps := []struct {
			op   uint8
			body string
		}{{op1, body1}, {op2, body2}, {op3, body3}}
		for _, s := range steps {
			path, body := apiPaths[int(s.op)%len(apiPaths)], []byte(s.body)
			req, decoded := apiRequest(path, body)
			if c, ok := req.(*volume.CreateRequest); ok {
				if cr, err := options.Parse(c.Options, options.DefaultsOf(r.cfg)); err == nil && cr.Opts.Size > maxFuzzSize {
					continue
				}
			}
			var watch []string
			if decoded {
				for _, s := range requestStrings(req) {
					watch = append(watch, absent(r.escapes(s))...)
				}
			}
			status, answer, err := api.post(path, body)
			if err != nil {
				t.Fatalf("%s %q: %v", path, body, err)
			}
			r.checkAnswer(t, path, body, status, answer)
			if made := diff(watch, absent(watch)); len(made) > 0 {
				t.Errorf("%s %q made files where no volume file belongs: %q", path, body, made)
			}
		}
		// Every call has answered: a volume lock still held would make
		// the next call on the volume wait until it times out.
		held := r.p.eng.Locked()
		if held > 0 {
			t.Errorf("%d volume locks held after every call answered", held)
		}
	})
}

// diff returns the elements of a that are not in b.
func diff(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	return out
}
