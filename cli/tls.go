package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/rexray/rexray/config"
)

// clientTLS is the operator CLI's TLS to the plugin's TCP endpoint at addr,
// made from the plugin's own REXRAY_TLS_* files: REXRAY_TLS_CERTFILE and
// REXRAY_TLS_KEYFILE are the client's certificate, and the plugin is
// trusted when it presents that very certificate (the CLI holds its key),
// or one that REXRAY_TLS_CLIENTCAFILE (else the system's roots) signed for
// addr's host.
func clientTLS(cfg config.Config, addr string) (*tls.Config, error) {
	var missing []string
	if cfg.TLSCertFile == "" {
		missing = append(missing, "REXRAY_TLS_CERTFILE")
	}
	if cfg.TLSKeyFile == "" {
		missing = append(missing, "REXRAY_TLS_KEYFILE")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("REXRAY_HOST=%s is TCP: the CLI speaks TLS with a client certificate, and %v is not set; set REXRAY_TLS_CERTFILE and REXRAY_TLS_KEYFILE (the plugin's files, or a certificate its REXRAY_TLS_CLIENTCAFILE signed), or REXRAY_HOST_INSECURE=true for a plugin on plain TCP", cfg.Host, missing)
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate REXRAY_TLS_CERTFILE=%s, REXRAY_TLS_KEYFILE=%s: %w", cfg.TLSCertFile, cfg.TLSKeyFile, err)
	}
	var roots *x509.CertPool // nil: the system's
	if cfg.TLSClientCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("REXRAY_TLS_CLIENTCAFILE: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("REXRAY_TLS_CLIENTCAFILE=%s: no PEM certificate in it", cfg.TLSClientCAFile)
		}
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost" // tcp://:7981 is dialled on this host
	}
	own := cert.Certificate[0]
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ServerName:   host,
		// Verification is VerifyConnection's: it accepts the plugin's own
		// certificate, which need not name the host it is dialled by.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the plugin presented no certificate")
			}
			leaf := cs.PeerCertificates[0]
			if bytes.Equal(leaf.Raw, own) {
				return nil
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: cs.ServerName}); err != nil {
				return fmt.Errorf("the plugin's certificate is neither REXRAY_TLS_CERTFILE's nor one REXRAY_TLS_CLIENTCAFILE (or the system) trusts for %s: %w", cs.ServerName, err)
			}
			return nil
		},
	}, nil
}
