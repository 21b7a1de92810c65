package client

import (
	"path/filepath"
	"strings"
)

// DefaultDockerRoot is dockerd's default data root.
const DefaultDockerRoot = "/var/lib/docker"

// ManagedID is the plugin ID in a managed plugin's socket address
// (unix:///run/docker/plugins/<ID>/NAME.sock), or "" for any other address:
// a plugin in host mode.
func ManagedID(addr string) string {
	id := filepath.Base(filepath.Dir(strings.TrimPrefix(addr, "unix://")))
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return ""
	}
	return id
}

// HostPath maps mp, a mount point that the managed plugin id reported from
// inside its own mount namespace (under mountPath, its propagated mount),
// to where the host sees it: dockerd's data root, then
// plugins/<ID>/propagated-mount. Any other path comes back as it is.
func HostPath(id, dockerRoot, mountPath, mp string) string {
	if id == "" || mp == "" {
		return mp
	}
	rel, err := filepath.Rel(mountPath, mp)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return mp
	}
	return filepath.Join(dockerRoot, "plugins", id, "propagated-mount", rel)
}
