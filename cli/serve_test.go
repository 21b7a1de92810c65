//go:build integration

package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback"
)

// A plugin stopped by a signal (dockerd's SIGTERM on docker plugin disable)
// says so in its log before it exits, so that a stop is not taken for a
// crash.
func TestServeSaysWhyItStops(t *testing.T) {
	dir := setup(t)
	sock := filepath.Join(dir, "rexray.sock")
	t.Setenv("REXRAY_HOST", "unix://"+sock)
	ctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	var logged bytes.Buffer
	served := make(chan int)
	go func() {
		c := &Command{Registry: drivers.Registry{loopback.Name: loopback.FromEnv}, Version: "test", Stdout: io.Discard, Stderr: &logged}
		served <- c.Run(ctx, []string{"serve"})
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen on %s", sock)
		}
	}
	stop(errors.New("terminated signal received"))
	if code := <-served; code != 0 {
		t.Errorf("serve exited %d: %s", code, logged.String())
	}
	if !strings.Contains(logged.String(), "rexray stopping: terminated signal received") {
		t.Errorf("serve stopped by a signal logged %q, without saying why it stops", logged.String())
	}
}
