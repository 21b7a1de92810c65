package loopback

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// checkStore refuses a store whose filesystem cannot give the lease
// protocol what it rests on (docs/leases.md): on NFS, close-to-open
// consistency, by which an open of a lease shows what another host wrote
// and closed, and over NFSv4 a client the server tells apart from other
// hosts' (checkNFSv4Identity). It warns of a hard NFS mount, on which
// writes this host sent before losing the server may land after another
// host took over.
func checkStore(path string, ttl time.Duration, log logrus.FieldLogger) error {
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
	if err := checkNFS(path, m.Source, m.VFSOptions, readNFSIdentity()); err != nil {
		return err
	}
	if risk := hardRisk(path, m.Source, m.VFSOptions, ttl); risk != "" {
		log.Warn(risk)
	}
	return nil
}

// hardRisk is the warning for an NFS mount that retries forever (hard,
// NFS's default) or longer than two thirds of the lease TTL (soft with a
// long timeout): "" for one whose writes fail before this host fences
// itself.
func hardRisk(path, export, options string, ttl time.Duration) string {
	soft, timeo, retrans := false, 600, 2 // NFS over TCP's defaults
	for _, o := range strings.Split(options, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "soft", "softerr":
			soft = true
		case "hard":
			soft = false
		case "timeo":
			timeo, _ = strconv.Atoi(v)
		case "retrans":
			retrans, _ = strconv.Atoi(v)
		}
	}
	fence := ttl * 2 / 3
	// A soft request fails after its retransmissions, each waiting timeo
	// tenths of a second.
	if soft && time.Duration(timeo*(retrans+1))*100*time.Millisecond < fence {
		return ""
	}
	return fmt.Sprintf("loopback store %s is on NFS export %s mounted so that a write waits for the server longer than this host's self-fence (%s, 2/3 of LOOPBACK_LEASETTL): if this host loses the server while it holds a volume, blocks it sent may still reach the image after another host took the volume over; mount it soft with timeo and retrans that fail a write within %s (for example soft,timeo=%d,retrans=1)",
		path, export, fence, fence, max(1, int(fence/(3*100*time.Millisecond))))
}

// checkNFS refuses an NFS mount that breaks a guarantee the leases need:
// close-to-open consistency, without which a host may read a lease
// another host replaced; and, over NFSv4, a client identity of its own
// (checkNFSv4Identity).
func checkNFS(path, export, options string, id nfsIdentity) error {
	if slices.Contains(strings.Split(options, ","), "nocto") {
		return fmt.Errorf("loopback store %s is on NFS export %s mounted with nocto: without close-to-open consistency a host may read a lease another host replaced and mount a volume that host holds; remount it without nocto (close-to-open is NFS's default), for example with -o vers=4.2", path, export)
	}
	return checkNFSv4Identity(path, export, options, id)
}

// nfsIdentity is what this host's NFSv4 client names itself by to the
// server: its host name, and a uniquifier if one is set ("" if not).
type nfsIdentity struct{ nodename, uniquifier string }

// checkNFSv4Identity refuses an NFSv4 store on a host whose NFSv4 client
// identity is a default one. The server takes every client of one
// identity for one client that rebooted whenever another connects, and
// drops its sessions, opens and locks: measured in the NFS tests' VMs,
// all named "(none)", calls stalled for 15 to 70 s while the clients made
// new sessions dozens of times a minute, and a fence's flush was
// acknowledged after another host had taken the volume over. NFSv3 has
// no client state, and no such identity.
func checkNFSv4Identity(path, export, options string, id nfsIdentity) error {
	// The names of a host nothing named: the kernel's own, and those images
	// ship, alike on every host made from them.
	defaults := []string{"", "(none)", "localhost", "localhost.localdomain"}
	if !nfsV4(options) || id.uniquifier != "" || !slices.Contains(defaults, id.nodename) {
		return nil
	}
	return fmt.Errorf("loopback store %s is on NFS export %s over NFSv4, and this host's NFSv4 client names itself by the default host name %q with no uniquifier: every host so named is one client to the server, which drops the others' sessions, opens and locks whenever one connects, so that calls stall for tens of seconds and a lease renewal or a fence comes too late; give this host a name of its own (hostnamectl set-hostname), or a uniquifier before the export is mounted (echo ID > /sys/fs/nfs/net/nfs_client/identifier, or the nfs module's nfs4_unique_id), or mount it over NFSv3 (-o vers=3)", path, export, id.nodename)
}

// nfsV4 says whether NFS mount options are an NFSv4 mount's.
func nfsV4(options string) bool {
	for _, o := range strings.Split(options, ",") {
		if k, v, _ := strings.Cut(o, "="); k == "vers" || k == "nfsvers" {
			return strings.HasPrefix(v, "4")
		}
	}
	return false
}

// readNFSIdentity reads this host's NFSv4 client identity: the host name,
// and the uniquifier of this network namespace or else the nfs module's
// (Linux reads them when it mounts).
func readNFSIdentity() nfsIdentity {
	var u unix.Utsname
	unix.Uname(&u)
	id := nfsIdentity{nodename: unix.ByteSliceToString(u.Nodename[:])}
	for _, f := range []string{"/sys/fs/nfs/net/nfs_client/identifier", "/sys/module/nfs/parameters/nfs4_unique_id"} {
		b, _ := os.ReadFile(f)
		if v := strings.TrimSpace(string(b)); v != "" && v != "(null)" {
			id.uniquifier = v
			break
		}
	}
	return id
}
