package dvdcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rexray/rexray/api/client"
)

// Finder finds a volume plugin by name the way dockerd finds a legacy one:
// its socket in the plugin folder, then a spec file; and a managed plugin
// by its socket in a folder named after its ID.
type Finder struct {
	Override   string   // DVDCLI_SOCKET: a socket path or address, used as is
	SocketDirs []string // /run/docker/plugins
	SpecDirs   []string // /etc/docker/plugins, /usr/lib/docker/plugins
}

// HostFinder looks where dockerd does on this host.
func HostFinder(override string) Finder {
	return Finder{
		Override:   override,
		SocketDirs: []string{"/run/docker/plugins"},
		SpecDirs:   []string{"/etc/docker/plugins", "/usr/lib/docker/plugins"},
	}
}

// Client finds the plugin named driver.
func (f Finder) Client(driver string) (*client.Client, error) {
	addr, err := f.Address(driver)
	if err != nil {
		return nil, err
	}
	return client.ForAddress(addr)
}

// Address is where the plugin named driver listens.
func (f Finder) Address(driver string) (string, error) {
	if f.Override != "" {
		return f.Override, nil
	}
	if strings.ContainsAny(driver, "/:") || driver == "." || driver == ".." {
		return "", fmt.Errorf("volume driver %q: give the plugin's name as dockerd finds it (rexray), not a path", driver)
	}
	for _, dir := range f.SocketDirs {
		for _, p := range []string{filepath.Join(dir, driver+".sock"), filepath.Join(dir, driver, driver+".sock")} {
			if isSocket(p) {
				return "unix://" + p, nil
			}
		}
	}
	for _, dir := range f.SpecDirs {
		if addr, err := readSpec(dir, driver); addr != "" || err != nil {
			return addr, err
		}
	}
	return f.managed(driver)
}

// managed finds a managed plugin: dockerd puts its socket in a folder
// named after the plugin's ID.
func (f Finder) managed(driver string) (string, error) {
	var found []string
	for _, dir := range f.SocketDirs {
		socks, _ := filepath.Glob(filepath.Join(dir, "*", driver+".sock"))
		for _, s := range socks {
			if isSocket(s) {
				found = append(found, s)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("volume driver %q not found: no %s.sock in %s, no spec file in %s; is the plugin running? (DVDCLI_SOCKET names a socket directly)",
			driver, driver, strings.Join(f.SocketDirs, ", "), strings.Join(f.SpecDirs, ", "))
	case 1:
		return "unix://" + found[0], nil
	}
	return "", fmt.Errorf("volume driver %q: several plugins answer to it (%s); set DVDCLI_SOCKET to one", driver, strings.Join(found, ", "))
}

// readSpec reads NAME.spec (an address) or NAME.json ({"Addr": ...}).
func readSpec(dir, driver string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(dir, driver+".spec")); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	b, err := os.ReadFile(filepath.Join(dir, driver+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var spec struct {
		Addr      string
		TLSConfig *json.RawMessage
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return "", fmt.Errorf("spec file %s: %w", filepath.Join(dir, driver+".json"), err)
	}
	if spec.TLSConfig != nil || strings.HasPrefix(spec.Addr, "https://") {
		return "", fmt.Errorf("spec file %s: TLS endpoints are not supported by dvdcli; run it on a host where the plugin has a unix socket", filepath.Join(dir, driver+".json"))
	}
	return spec.Addr, nil
}

func isSocket(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode()&os.ModeSocket != 0
}
