package loopback

import (
	"fmt"
	"os"
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
// and closed, and lookups that find what another host made. It warns of a
// hard NFS mount, on which writes this host sent before losing the server
// may land after another host took over.
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
	if err := checkNFS(path, m.Source, m.VFSOptions); err != nil {
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

// checkNFS refuses NFS mount options that break a guarantee the leases
// need: close-to-open consistency, and, over NFSv4, finding a name
// another host made. An NFSv4 client (Linux 6.1's, measured in VMs:
// docs/leases.md) answers a lookup that found nothing from its cache for
// 25 s and more after another host made the name; NFSv3's finds it within
// a second or two. A holder would miss a preempt request, and a create the
// record of a volume another host just made. lookupcache=positive (or
// none) turns that cache off.
func checkNFS(path, export, options string) error {
	v4, negCache := false, true
	for _, o := range strings.Split(options, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch {
		case o == "nocto":
			return fmt.Errorf("loopback store %s is on NFS export %s mounted with nocto: without close-to-open consistency a host may read a lease another host replaced and mount a volume that host holds; remount it without nocto (close-to-open is NFS's default), for example with -o vers=4.2,lookupcache=positive", path, export)
		case k == "vers" || k == "nfsvers":
			v4 = strings.HasPrefix(v, "4")
		case k == "lookupcache":
			negCache = v == "all"
		}
	}
	if v4 && negCache {
		return fmt.Errorf("loopback store %s is on NFS export %s mounted over NFSv4 with its cache of names not found (lookupcache=all, the default): such a client does not find a name another host made for many seconds, so a holder would miss another host's preempt request and a create the record of a volume another host just made; remount it with -o lookupcache=positive (for example vers=4.2,lookupcache=positive), or over NFSv3", path, export)
	}
	return nil
}
