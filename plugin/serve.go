package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/go-plugins-helpers/volume"
)

// Listen opens the endpoint Docker talks to. Only unix:// is supported; the
// socket is made root-only, since whoever reaches it can mount any volume.
func Listen(host string) (net.Listener, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok || path == "" {
		return nil, fmt.Errorf("REXRAY_HOST=%q: only unix:///path/to.sock is supported", host)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// A socket left by a killed predecessor would make Listen fail.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// Serve answers Docker on l, restoring state in the background, until ctx
// is cancelled.
func (p *Plugin) Serve(ctx context.Context, l net.Listener) error {
	go p.Restore(ctx)
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	err := volume.NewHandler(p).Serve(l)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
