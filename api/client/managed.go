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

// PropagatedMount is the managed plugin's propagated mount (config.json):
// its classic volumes' mount root and Swarm's published volumes lie under it.
const PropagatedMount = "/data"

// HostPath maps mp, a mount point that the managed plugin id reported from
// inside its own mount namespace, to where the host sees it: dockerd's data
// root, then plugins/<ID>/propagated-mount. mp lies under PropagatedMount,
// or, for a plugin of an earlier layout whose propagated mount was its
// mount root, under mountPath. Any other path comes back as it is.
func HostPath(id, dockerRoot, mountPath, mp string) string {
	if id == "" || mp == "" {
		return mp
	}
	for _, root := range []string{PropagatedMount, mountPath} {
		if rel, ok := beneath(root, mp); ok {
			return filepath.Join(dockerRoot, "plugins", id, "propagated-mount", rel)
		}
	}
	return mp
}

func beneath(root, path string) (string, bool) {
	rel, err := filepath.Rel(root, path)
	return rel, err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
