//go:build integration

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rexray/rexray/api"
	"github.com/rexray/rexray/internal/testpki"
)

// cliLedger points the commands at a ledger of their own, apart from the
// plugin's: a command that opened a ledger instead of using REXRAY_HOST
// would leave it there.
func cliLedger(t *testing.T, dir string) string {
	t.Helper()
	ledger := filepath.Join(dir, "cli-state")
	t.Setenv("REXRAY_STATEDIR", ledger)
	return ledger
}

func noLedger(t *testing.T, ledger string) {
	t.Helper()
	if _, err := os.Stat(ledger); !os.IsNotExist(err) {
		t.Errorf("the command opened a ledger of its own at %s (%v) instead of using REXRAY_HOST", ledger, err)
	}
}

// servedVolumes lists what the plugin at REXRAY_HOST holds.
func servedVolumes(t *testing.T) []string {
	t.Helper()
	var vols []api.VolumeInfo
	if err := json.Unmarshal([]byte(mustRun(t, "volume", "ls", "--format", "json")), &vols); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vols {
		names = append(names, v.Name)
	}
	return names
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// REXRAY_HOST=unix://<plugin socket>: the commands talk to that socket,
// even when the plugin keeps another ledger than REXRAY_STATEDIR, and never
// open a ledger of their own.
func TestExplicitUnixHostIsUsed(t *testing.T) {
	dir := setup(t)
	sock := filepath.Join(dir, "rexray.sock")
	t.Setenv("REXRAY_HOST", "unix://"+sock)
	serve(t, "unix", sock)
	ledger := cliLedger(t, dir)
	createAtHost(t, ledger)
}

// createAtHost creates and removes a volume with the commands: the plugin
// at REXRAY_HOST holds it, and the commands open no ledger of their own.
func createAtHost(t *testing.T, ledger string) {
	t.Helper()
	mustRun(t, "volume", "create", "v", "-o", "size=32MiB")
	noLedger(t, ledger)
	if names := servedVolumes(t); fmt.Sprint(names) != "[v]" {
		t.Errorf("the plugin at REXRAY_HOST holds %v, want [v]", names)
	}
	mustRun(t, "volume", "rm", "v")
	noLedger(t, ledger)
}

// A set REXRAY_HOST where no plugin answers is an error that says so,
// never a reason to open the ledger instead.
func TestExplicitHostNotAnsweringIsRefused(t *testing.T) {
	dir := setup(t)
	for _, host := range []string{"unix://" + filepath.Join(dir, "nobody.sock"), "tcp://" + freePort(t)} {
		t.Setenv("REXRAY_HOST", host)
		t.Setenv("REXRAY_HOST_INSECURE", "true")
		code, out, errOut := run(context.Background(), "volume", "create", "v", "-o", "size=32MiB")
		if code == 0 || out != "" || !strings.Contains(errOut, "REXRAY_HOST="+host) || !strings.Contains(errOut, "unset REXRAY_HOST") {
			t.Errorf("REXRAY_HOST=%s, nothing there: exit %d, stdout %q, stderr %q; want a refusal naming it", host, code, out, errOut)
		}
		noLedger(t, filepath.Join(dir, "state"))
	}
	t.Setenv("REXRAY_HOST", "unix://relative.sock")
	if code, _, errOut := run(context.Background(), "volume", "ls"); code == 0 || !strings.Contains(errOut, `REXRAY_HOST="unix://relative.sock"`) || !strings.Contains(errOut, "not absolute") {
		t.Errorf("REXRAY_HOST=unix://relative.sock: exit %d, %q; want it refused", code, errOut)
	}
	noLedger(t, filepath.Join(dir, "state"))
}

// REXRAY_HOST=tcp://...: the commands reach that endpoint, plain when
// REXRAY_HOST_INSECURE allows it.
func TestExplicitPlainTCPHostIsUsed(t *testing.T) {
	dir := setup(t)
	addr := freePort(t)
	t.Setenv("REXRAY_HOST", "tcp://"+addr)
	t.Setenv("REXRAY_HOST_INSECURE", "true")
	serve(t, "tcp", addr)
	ledger := cliLedger(t, dir)
	createAtHost(t, ledger)
}

// REXRAY_HOST=tcp://... with TLS: the commands present the same
// REXRAY_TLS_* files as their client certificate; without them they say
// which are missing.
func TestExplicitTLSHostIsUsed(t *testing.T) {
	dir := setup(t)
	addr := freePort(t)
	ca, caKey := testpki.NewCert(t, dir, "ca", nil, nil)
	testpki.NewCert(t, dir, "server", ca, caKey)
	t.Setenv("REXRAY_HOST", "tcp://"+addr)
	t.Setenv("REXRAY_TLS_CERTFILE", filepath.Join(dir, "server.pem"))
	t.Setenv("REXRAY_TLS_KEYFILE", filepath.Join(dir, "server-key.pem"))
	t.Setenv("REXRAY_TLS_CLIENTCAFILE", filepath.Join(dir, "ca.pem"))
	serve(t, "tcp", addr)
	ledger := cliLedger(t, dir)
	mustRun(t, "volume", "create", "v", "-o", "size=32MiB")
	noLedger(t, ledger)
	if names := servedVolumes(t); fmt.Sprint(names) != "[v]" {
		t.Errorf("the plugin at REXRAY_HOST holds %v, want [v]", names)
	}

	// Another client certificate the CA signed is served too, the plugin
	// being trusted through the CA.
	testpki.NewCert(t, dir, "client", ca, caKey)
	t.Setenv("REXRAY_TLS_CERTFILE", filepath.Join(dir, "client.pem"))
	t.Setenv("REXRAY_TLS_KEYFILE", filepath.Join(dir, "client-key.pem"))
	if names := servedVolumes(t); fmt.Sprint(names) != "[v]" {
		t.Errorf("with the client certificate, the plugin at REXRAY_HOST holds %v, want [v]", names)
	}

	// A client certificate the plugin's CA did not sign is refused, and the
	// error names the certificate presented.
	testpki.NewCert(t, dir, "stranger", nil, nil)
	t.Setenv("REXRAY_TLS_CERTFILE", filepath.Join(dir, "stranger.pem"))
	t.Setenv("REXRAY_TLS_KEYFILE", filepath.Join(dir, "stranger-key.pem"))
	code, out, errOut := run(context.Background(), "volume", "ls")
	if code == 0 || out != "" || !strings.Contains(errOut, "REXRAY_TLS_CERTFILE="+filepath.Join(dir, "stranger.pem")) {
		t.Errorf("with a client certificate the CA did not sign: exit %d, stdout %q, stderr %q; want a refusal naming it", code, out, errOut)
	}

	os.Unsetenv("REXRAY_TLS_KEYFILE")
	code, out, errOut = run(context.Background(), "volume", "ls")
	if code == 0 || out != "" || !strings.Contains(errOut, "[REXRAY_TLS_KEYFILE] is not set") {
		t.Errorf("without REXRAY_TLS_KEYFILE: exit %d, stdout %q, stderr %q; want a refusal naming it", code, out, errOut)
	}
	os.Unsetenv("REXRAY_TLS_CERTFILE")
	code, _, errOut = run(context.Background(), "volume", "ls")
	if code == 0 || !strings.Contains(errOut, "[REXRAY_TLS_CERTFILE REXRAY_TLS_KEYFILE] is not set") {
		t.Errorf("without the TLS files: exit %d, stderr %q; want a refusal naming them", code, errOut)
	}
	noLedger(t, ledger)
	t.Setenv("REXRAY_TLS_CERTFILE", filepath.Join(dir, "server.pem"))
	t.Setenv("REXRAY_TLS_KEYFILE", filepath.Join(dir, "server-key.pem"))
	mustRun(t, "volume", "rm", "v")
}
