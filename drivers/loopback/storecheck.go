package loopback

import (
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// checkStore refuses a store whose filesystem cannot give the lease
// protocol what it rests on (docs/leases.md): on NFS, close-to-open
// consistency, by which an open of a lease shows what another host wrote
// and closed.
func checkStore(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("loopback store %s: %w", path, os.NewSyscallError("statfs", err))
	}
	if st.Type != unix.NFS_SUPER_MAGIC {
		return nil
	}
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(path))
	if err != nil || len(mounts) == 0 {
		return fmt.Errorf("loopback store %s is on NFS, and its mount options cannot be read: %v", path, err)
	}
	m := mounts[0]
	for _, c := range mounts[1:] {
		if len(c.Mountpoint) > len(m.Mountpoint) {
			m = c
		}
	}
	return checkNFS(path, m.Source, m.VFSOptions)
}

// checkNFS refuses NFS mount options that break a guarantee the leases
// need.
func checkNFS(path, export, options string) error {
	for _, o := range strings.Split(options, ",") {
		if o == "nocto" {
			return fmt.Errorf("loopback store %s is on NFS export %s mounted with nocto: without close-to-open consistency a host may read a lease another host replaced and mount a volume that host holds; remount it without nocto (close-to-open is NFS's default), for example with -o vers=4.2", path, export)
		}
	}
	return nil
}
