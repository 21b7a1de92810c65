//go:build integration

package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// specDir is where dockerd looks for plugins' spec files. It is the whole
// host's: the tests' files have their own names and are removed after.
const specDir = "/etc/docker/plugins"

func writeSpec(t *testing.T, file, content string) {
	t.Helper()
	if err := os.MkdirAll(specDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(specDir, file)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestExternalAccess: the endpoint on TCP, found by dockerd through a spec
// file in /etc/docker/plugins: plain (when allowed) and with TLS and
// client certificates.
func TestExternalAccess(t *testing.T) {
	t.Run("PlainTCPRefusedUnlessAllowed", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(suite.repo, "bin", "rexray"), "serve")
		cmd.Env = append(os.Environ(), fmt.Sprintf("REXRAY_HOST=tcp://127.0.0.1:%d", freePort(t)),
			"REXRAY_STATEDIR="+t.TempDir(), "LOOPBACK_VOLUMEPATH="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "REXRAY_HOST_INSECURE=true") {
			t.Errorf("rexray serve on plain TCP: %v, %s; want a refusal naming REXRAY_HOST_INSECURE", err, out)
		}
	})
	t.Run("PlainTCPSpec", func(t *testing.T) {
		port := freePort(t)
		h := startHostPlugin(t, "rexray-tcp", fmt.Sprintf("REXRAY_HOST=tcp://127.0.0.1:%d", port), "REXRAY_HOST_INSECURE=true")
		if !strings.Contains(h.log(), "level=warning") || !strings.Contains(h.log(), "plain TCP") {
			t.Errorf("no warning about plain TCP in the log:\n%s", h.log())
		}
		writeSpec(t, h.name+".spec", fmt.Sprintf("tcp://127.0.0.1:%d\n", port))
		useVolume(t, h.name, "tcpvol")
	})
	t.Run("TLSJSONSpec", func(t *testing.T) {
		port := freePort(t)
		pki := makePKI(t)
		h := startHostPlugin(t, "rexray-tls", fmt.Sprintf("REXRAY_HOST=tcp://127.0.0.1:%d", port),
			"REXRAY_TLS_CERTFILE="+pki.file("server.pem"), "REXRAY_TLS_KEYFILE="+pki.file("server-key.pem"),
			"REXRAY_TLS_CLIENTCAFILE="+pki.file("ca.pem"))
		writeSpec(t, h.name+".json", fmt.Sprintf(`{
  "Name": %q,
  "Addr": "https://127.0.0.1:%d",
  "TLSConfig": {"InsecureSkipVerify": false, "CAFile": %q, "CertFile": %q, "KeyFile": %q}
}
`, h.name, port, pki.file("ca.pem"), pki.file("client.pem"), pki.file("client-key.pem")))
		useVolume(t, h.name, "tlsvol")
		if err := tlsCall(pki, port, false); err == nil {
			t.Error("a client without a certificate was answered")
		}
		if err := tlsCall(pki, port, true); err != nil {
			t.Errorf("a client with a certificate from the CA: %v", err)
		}
	})
}

type pki string

func (p pki) file(name string) string { return filepath.Join(string(p), name) }

// makePKI makes, with openssl as an operator would, a CA, a server
// certificate for 127.0.0.1 and a client certificate, both signed by it.
func makePKI(t *testing.T) pki {
	t.Helper()
	p := pki(t.TempDir())
	steps := [][]string{
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=rexray-test-ca", "-keyout", p.file("ca-key.pem"), "-out", p.file("ca.pem")},
	}
	for _, who := range []string{"server", "client"} {
		ext := p.file(who + ".ext")
		os.WriteFile(ext, []byte("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"), 0o600)
		steps = append(steps,
			[]string{"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + who, "-keyout", p.file(who + "-key.pem"), "-out", p.file(who + ".csr")},
			[]string{"x509", "-req", "-in", p.file(who + ".csr"), "-CA", p.file("ca.pem"), "-CAkey", p.file("ca-key.pem"), "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", p.file(who + ".pem")},
		)
	}
	for _, s := range steps {
		if out, err := exec.Command("openssl", s...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return p
}

// tlsCall asks the endpoint for its capabilities over TLS, with or without
// the client certificate.
func tlsCall(p pki, port int, withCert bool) error {
	ca, err := os.ReadFile(p.file("ca.pem"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	cfg := &tls.Config{RootCAs: roots}
	if withCert {
		cert, err := tls.LoadX509KeyPair(p.file("client.pem"), p.file("client-key.pem"))
		if err != nil {
			return err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /VolumeDriver.Capabilities HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if !strings.Contains(string(buf[:n]), "global") {
		return fmt.Errorf("answer %q", buf[:n])
	}
	return nil
}
