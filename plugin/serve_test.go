package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Whoever reaches the socket can mount any volume: root only.
func TestListenIsRootOnly(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "rexray.sock")
	l, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %o, want 600", perm)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != uint32(os.Geteuid()) {
		t.Errorf("socket owned by %d", uid)
	}
}

// A stale socket from a killed predecessor must not stop the start.
func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "rexray.sock")
	l, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	os.WriteFile(sock, nil, 0o600) // what a kill -9 can leave
	l, err = Listen("unix://" + sock)
	if err != nil {
		t.Fatalf("second Listen over a stale socket: %v", err)
	}
	l.Close()
}

// Plain TCP is not offered: no endpoint without authentication.
func TestListenRefusesTCP(t *testing.T) {
	for _, host := range []string{"tcp://127.0.0.1:7981", "tcp://:7981", "http://x", "/no/scheme.sock", "unix://"} {
		l, err := Listen(host)
		if err == nil {
			l.Close()
			t.Errorf("Listen(%q) succeeded", host)
			continue
		}
		if !strings.Contains(err.Error(), "REXRAY_HOST") {
			t.Errorf("Listen(%q) = %v: should name REXRAY_HOST", host, err)
		}
	}
}
