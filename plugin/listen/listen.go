// Package listen opens the endpoint the plugin answers on, at REXRAY_HOST: a
// root-only unix socket, or TCP with TLS (plain only when allowed).
package listen

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/netutil"

	"github.com/rexray/rexray/config"
)

// Listen opens the endpoint Docker talks to, at REXRAY_HOST: a unix socket,
// made root-only since whoever reaches it can mount any volume; or TCP,
// with TLS, or plain only when REXRAY_HOST_INSECURE allows it.
// On TCP at most MaxConns connections are served at once; more wait in
// the listen queue until one ends.
func Listen(cfg config.Config, log logrus.FieldLogger) (net.Listener, error) {
	return Limited(cfg, log, MaxConns)
}

// MaxConns bounds the connections a TCP endpoint serves at once. dockerd
// holds a few; a client that opens thousands must not exhaust the plugin's
// memory or file descriptors. The unix socket is root's only.
const MaxConns = 128

// Limited is Listen with at most conns connections served at once on TCP.
func Limited(cfg config.Config, log logrus.FieldLogger, conns int) (net.Listener, error) {
	network, addr, err := cfg.Endpoint()
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		return listenUnix(addr)
	}
	if cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" && cfg.TLSClientCAFile == "" {
		if !cfg.HostInsecure {
			return nil, fmt.Errorf("REXRAY_HOST=%s is TCP without TLS: anyone who reaches it could mount any volume; set REXRAY_TLS_CERTFILE and REXRAY_TLS_KEYFILE (and REXRAY_TLS_CLIENTCAFILE to require client certificates), or REXRAY_HOST_INSECURE=true to allow plain TCP", cfg.Host)
		}
		log.Warnf("REXRAY_HOST=%s is plain TCP (REXRAY_HOST_INSECURE=true): anyone who can reach it can mount, read and remove any volume", cfg.Host)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Host, err)
		}
		return netutil.LimitListener(l, conns), nil
	}
	tc, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	if tc.ClientCAs == nil {
		log.Warnf("REXRAY_HOST=%s takes any client (no REXRAY_TLS_CLIENTCAFILE): anyone who can reach it can mount any volume", cfg.Host)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Host, err)
	}
	return tls.NewListener(netutil.LimitListener(l, conns), tc), nil
}

// serverTLS is the endpoint's TLS: its certificate and, with a client CA,
// client certificates required and verified.
func serverTLS(cfg config.Config) (*tls.Config, error) {
	if cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" {
		return nil, errors.New("TLS needs both REXRAY_TLS_CERTFILE and REXRAY_TLS_KEYFILE")
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("REXRAY_TLS_CERTFILE, REXRAY_TLS_KEYFILE: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.TLSClientCAFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(cfg.TLSClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("REXRAY_TLS_CLIENTCAFILE: %w", err)
	}
	tc.ClientCAs = x509.NewCertPool()
	if !tc.ClientCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("REXRAY_TLS_CLIENTCAFILE=%s: no PEM certificate in it", cfg.TLSClientCAFile)
	}
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	return tc, nil
}

func listenUnix(path string) (net.Listener, error) {
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
