package csi

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// linesOf are the messages the host logged under request ID id.
func (h *host) linesOf(id string) []string {
	var out []string
	for _, e := range h.logs.AllEntries() {
		if e.Data["req"] == id {
			out = append(out, e.Message)
		}
	}
	return out
}

// A CSI caller's own ID (metadata x-request-id) names the call in the
// answer's header, in its error, and on the lines the front door and the
// engine log for it.
func TestCSIRequestIDFromMetadata(t *testing.T) {
	h := memHost(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "swarm-42")
	var header metadata.MD
	_, err := h.node.NodeStageVolume(ctx, &spec.NodeStageVolumeRequest{VolumeId: "missing", StagingTargetPath: "/staged/missing", VolumeCapability: writer}, grpc.Header(&header))
	if err == nil || !strings.HasSuffix(status.Convert(err).Message(), " (request swarm-42)") {
		t.Fatalf("NodeStageVolume of a missing volume = %v, want an error ending (request swarm-42)", err)
	}
	if got := header.Get("x-request-id"); len(got) != 1 || got[0] != "swarm-42" {
		t.Errorf("answer's x-request-id = %v, want [swarm-42]", got)
	}
	if lines := h.linesOf("swarm-42"); len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "refused after") {
		t.Errorf("lines under req=swarm-42: %q, want the front door's refusal", lines)
	}

	// An ID that would not make one field of a log line (spaces, an
	// equals sign) is replaced with a new one.
	h.create("v", 32<<20)
	ctx = metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "bad id=1")
	if _, err := h.node.NodeStageVolume(ctx, &spec.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: "/staged/v", VolumeCapability: writer}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	id := header.Get("x-request-id")
	if len(id) != 1 || !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(id[0]) {
		t.Fatalf("answer's x-request-id = %q, want a new ID of 8 hex digits", id)
	}
	// The engine's lines of the attach carry it: the front door's ID
	// reached the engine through the context.
	found := false
	for _, e := range h.logs.AllEntries() {
		found = found || e.Data["req"] == id[0] && e.Data["op"] == "attach" && e.Data["volume"] == "v"
	}
	if !found {
		t.Errorf("no engine line of the attach under req=%s: %q", id[0], h.linesOf(id[0]))
	}
}

// Docker's front door: the caller's X-Request-Id, or a new ID, in the
// answer's header and at the end of its error.
func TestDockerRequestID(t *testing.T) {
	h := memHost(t)
	call := func(id string) (string, string) {
		c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", h.sock)
		}}}
		defer c.CloseIdleConnections()
		body, _ := json.Marshal(map[string]string{"Name": "missing", "ID": strings.Repeat("a", 64)})
		req, _ := http.NewRequest(http.MethodPost, "http://plugin/VolumeDriver.Mount", bytes.NewReader(body))
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Err string }
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.Header.Get("X-Request-Id"), out.Err
	}
	if got, msg := call("docker-7"); got != "docker-7" || !strings.HasSuffix(msg, " (request docker-7)") {
		t.Errorf("Mount of a missing volume with X-Request-Id docker-7: header %q, Err %q", got, msg)
	}
	got, msg := call("")
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(got) || !strings.HasSuffix(msg, " (request "+got+")") {
		t.Errorf("Mount of a missing volume: header %q, Err %q; want a new ID in both", got, msg)
	}
	if !strings.Contains(msg, "missing") {
		t.Errorf("Err %q lost the reason", msg)
	}
}
