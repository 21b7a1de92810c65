//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrapeMetrics reads addr's /metrics: its text, and each sample's value
// by its line's name and labels as written.
func scrapeMetrics(t *testing.T, addr string) (string, map[string]float64) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			samples[line[:i]] = v
		}
	}
	return string(b), samples
}

// TestMetrics: rexray in host mode with REXRAY_METRICS_ADDR, used by a
// real dockerd: rexray events follows each step, the counters move by
// exactly the calls made, the mounted
// volume's use shows while a container holds it, the output passes
// promtool, and a failed call's error names its request ID, which its
// log lines carry.
func TestMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: make setup installs Debian's prometheus package")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	h := startHostPlugin(t, "rexray-metrics", "REXRAY_METRICS_ADDR="+addr, "REXRAY_LOGLEVEL=debug", "REXRAY_LOGFORMAT=json")
	_, before := scrapeMetrics(t, addr)
	follow := h.command("events", "--format", "json")
	var followed bytes.Buffer
	follow.Stdout, follow.Stderr = &followed, &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer follow.Process.Kill()
	time.Sleep(500 * time.Millisecond) // connected before the first call

	mustDocker(t, "volume", "create", "-d", h.name, "-o", "size=64MiB", "metricsvol")
	mustDocker(t, "run", "-d", "--name", "metricsc", "-v", "metricsvol:/data", "busybox", "sh", "-c", "dd if=/dev/zero of=/data/f bs=1M count=8; sync; sleep 600")
	defer suite.docker("rm", "-f", "metricsc")
	var during map[string]float64
	// The lease is renewed every LOOPBACK_LEASETTL/5 (3 s) while held.
	waitFor(t, "the volume's use and a lease renewal to show", 20*time.Second, func() bool {
		_, during = scrapeMetrics(t, addr)
		return during[`rexray_volume_used_bytes{service="loopback",volume="metricsvol"}`] >= 8<<20 &&
			during[`rexray_lease_renewals_total{service="loopback"}`] >= 1
	})
	if during[`rexray_holds{kind="docker"}`] != 1 || during[`rexray_volumes_attached{service="loopback"}`] != 1 {
		t.Errorf("while the container runs: holds %v, attached %v; want 1 and 1", during[`rexray_holds{kind="docker"}`], during[`rexray_volumes_attached{service="loopback"}`])
	}
	mustDocker(t, "rm", "-f", "metricsc")
	mustDocker(t, "volume", "rm", "metricsvol")
	_, err = suite.docker("volume", "create", "-d", h.name, "-o", "colour=red", "badvol")
	text, after := scrapeMetrics(t, addr)
	follow.Process.Signal(syscall.SIGINT)
	if err := follow.Wait(); err != nil {
		t.Errorf("rexray events, interrupted: %v\n%s", err, followed.String())
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(followed.String()), "\n") {
		var ev struct{ Kind, Volume, Req string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Volume != "metricsvol" || ev.Req == "" {
			t.Errorf("rexray events line %q: %v, want one JSON event of metricsvol with its request ID", line, err)
		}
		kinds = append(kinds, ev.Kind)
	}
	if got, want := strings.Join(kinds, " "), "create attach mount unmount detach attach mount unmount detach remove"; got != want {
		t.Errorf("rexray events followed %q, want %q", got, want)
	}

	// dockerd mounts a volume twice for one docker run: at create, to
	// copy the image's files at the mount point into it, and at start.
	for key, want := range map[string]float64{
		`rexray_requests_total{door="docker",op="Create",result="ok"}`:    1,
		`rexray_requests_total{door="docker",op="Create",result="error"}`: 1,
		`rexray_requests_total{door="docker",op="Mount",result="ok"}`:     2,
		`rexray_requests_total{door="docker",op="Unmount",result="ok"}`:   2,
		`rexray_requests_total{door="docker",op="Remove",result="ok"}`:    1,
		`rexray_request_duration_seconds_count{door="docker",op="Mount"}`: 2,
		`rexray_events_total{kind="create"}`:                              1,
		`rexray_events_total{kind="attach"}`:                              2,
		`rexray_events_total{kind="mount"}`:                               2,
		`rexray_events_total{kind="unmount"}`:                             2,
		`rexray_events_total{kind="detach"}`:                              2,
		`rexray_events_total{kind="remove"}`:                              1,
		`rexray_events_total{kind="fence"}`:                               0,
	} {
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s moved by %v, want %v", key, got, want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewBufferString(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// The refused create's error ends with its request ID; the plugin's
	// JSON log lines of that call carry it as req.
	m := regexp.MustCompile(`\(request ([0-9a-f]{8})\)`).FindStringSubmatch(fmt.Sprint(err))
	if m == nil {
		t.Fatalf("docker volume create with an unknown option: %v, want an error naming its request", err)
	}
	if !strings.Contains(h.log(), `"req":"`+m[1]+`"`) {
		t.Errorf("no log line of request %s in the plugin's log", m[1])
	}
}
