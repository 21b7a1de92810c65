package listen

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/internal/testpki"
)

func open(t *testing.T, cfg config.Config) (net.Listener, string, error) {
	t.Helper()
	var logged bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logged)
	l, err := Listen(cfg, log)
	if err == nil {
		t.Cleanup(func() { l.Close() })
	}
	return l, logged.String(), err
}

// Whoever reaches the socket can mount any volume: root only.
func TestListenIsRootOnly(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "rexray.sock")
	if _, _, err := open(t, config.Config{Host: "unix://" + sock}); err != nil {
		t.Fatal(err)
	}
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
	l, _, err := open(t, config.Config{Host: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	os.WriteFile(sock, nil, 0o600) // what a kill -9 can leave
	if _, _, err := open(t, config.Config{Host: "unix://" + sock}); err != nil {
		t.Fatalf("second Listen over a stale socket: %v", err)
	}
}

// A relative socket path would put the socket wherever the daemon started:
// refused, naming the value, and nothing is made.
func TestListenRefusesARelativeSocket(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	_, _, err := open(t, config.Config{Host: "unix://relative.sock"})
	if err == nil || !strings.Contains(err.Error(), `REXRAY_HOST="unix://relative.sock"`) || !strings.Contains(err.Error(), "unix:///path/to.sock") {
		t.Errorf("Listen(unix://relative.sock) = %v, want a refusal naming the value and what is accepted", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the refused Listen left %v in the working folder", entries)
	}
}

// Plain TCP only when allowed, and then with a warning.
func TestListenPlainTCP(t *testing.T) {
	for _, host := range []string{"tcp://127.0.0.1:0", "http://x", "/no/scheme.sock", "unix://", "tcp://"} {
		if _, _, err := open(t, config.Config{Host: host}); err == nil || !strings.Contains(err.Error(), "REXRAY_") {
			t.Errorf("Listen(%q) = %v, want an error naming the setting", host, err)
		}
	}
	_, err := Listen(config.Config{Host: "tcp://127.0.0.1:0"}, logrus.New())
	if err == nil || !strings.Contains(err.Error(), "REXRAY_HOST_INSECURE=true") || !strings.Contains(err.Error(), "REXRAY_TLS_CERTFILE") {
		t.Errorf("plain TCP without REXRAY_HOST_INSECURE = %v", err)
	}
	l, logged, err := open(t, config.Config{Host: "tcp://127.0.0.1:0", HostInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged, "plain TCP") || !strings.Contains(logged, "level=warning") {
		t.Errorf("no warning logged for plain TCP: %q", logged)
	}
	go func() {
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			c.Close()
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*tls.Conn); ok {
		t.Errorf("connection %T, want plain TCP", c)
	}
}

// With a client CA, a client without a certificate is refused, one with a
// certificate the CA signed is served.
func TestListenTLSRequiresClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := testpki.NewCert(t, dir, "ca", nil, nil)
	testpki.NewCert(t, dir, "server", ca, caKey)
	testpki.NewCert(t, dir, "client", ca, caKey)
	cfg := config.Config{
		Host:            "tcp://127.0.0.1:0",
		TLSCertFile:     filepath.Join(dir, "server.pem"),
		TLSKeyFile:      filepath.Join(dir, "server-key.pem"),
		TLSClientCAFile: filepath.Join(dir, "ca.pem"),
	}
	l, logged, err := open(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if logged != "" {
		t.Errorf("logged %q for a TLS endpoint that verifies clients", logged)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	dial := func(certs []tls.Certificate) error {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, Certificates: certs})
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		// TLS 1.3 reports a refused client certificate at the first read.
		_, err = c.Read(make([]byte, 1))
		if err != nil && strings.Contains(err.Error(), "EOF") {
			return nil
		}
		return err
	}
	if err := dial(nil); err == nil {
		t.Error("a client without a certificate was served")
	}
	client, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := dial([]tls.Certificate{client}); err != nil {
		t.Errorf("a client with a certificate from the CA: %v", err)
	}

	cfg.TLSClientCAFile = ""
	if _, logged, err := open(t, cfg); err != nil || !strings.Contains(logged, "takes any client") {
		t.Errorf("TLS without a client CA: %v, logged %q; want a warning", err, logged)
	}
	for _, bad := range []config.Config{
		{Host: cfg.Host, TLSCertFile: cfg.TLSCertFile},
		{Host: cfg.Host, TLSCertFile: cfg.TLSCertFile, TLSKeyFile: filepath.Join(dir, "nope.pem")},
		{Host: cfg.Host, TLSCertFile: cfg.TLSCertFile, TLSKeyFile: cfg.TLSKeyFile, TLSClientCAFile: cfg.TLSKeyFile},
	} {
		if _, _, err := open(t, bad); err == nil || !strings.Contains(err.Error(), "REXRAY_TLS_") {
			t.Errorf("Listen with %+v = %v, want an error naming the setting", bad, err)
		}
	}
}
