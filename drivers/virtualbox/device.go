package virtualbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// guest finds attached disks in this VM. VirtualBox gives a SATA disk the
// serial number VB<first group of the medium UUID>-<last part>, which udev
// turns into /dev/disk/by-id/ata-VBOX_HARDDISK_VB<...>.
type guest struct {
	byID      string // /dev/disk/by-id
	scsiHosts string // /sys/class/scsi_host
	wait      time.Duration
}

// pattern matches the by-id link of the medium with this UUID, not its
// partitions'.
func (g guest) pattern(mediumID string) string {
	first, _, _ := strings.Cut(mediumID, "-")
	return filepath.Join(g.byID, "ata-VBOX_HARDDISK_VB"+first+"-*")
}

// device waits, within g.wait, for the medium's disk to appear and returns
// the device it links to. It asks the kernel to rescan the SCSI hosts
// first, as a hot-plugged SATA disk is not always announced.
func (g guest) device(ctx context.Context, mediumID string) (string, error) {
	g.rescan()
	ctx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if dev := g.find(mediumID); dev != "" {
			return dev, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no disk %s appeared in this guest within %s (VIRTUALBOX_DEVICEWAIT); is the controller's port hot-pluggable?", g.pattern(mediumID), g.wait)
		case <-tick.C:
		}
	}
}

// find is the medium's device if its link is there.
func (g guest) find(mediumID string) string {
	links, _ := filepath.Glob(g.pattern(mediumID)) // the pattern is well-formed
	for _, l := range links {
		if strings.Contains(l[len(g.byID):], "-part") {
			continue
		}
		if dev, err := filepath.EvalSymlinks(l); err == nil {
			return dev
		}
	}
	return ""
}

// rescan asks every SCSI host to look for new disks. It is best effort:
// where sysfs is read-only the disk may still appear by itself.
func (g guest) rescan() {
	hosts, _ := filepath.Glob(filepath.Join(g.scsiHosts, "host*", "scan"))
	for _, h := range hosts {
		_ = os.WriteFile(h, []byte("- - -"), 0)
	}
}

// release tells the kernel the medium's disk is going, before it is pulled,
// so that the guest does not see a surprise removal. Best effort too.
func (g guest) release(mediumID string) {
	dev := g.find(mediumID)
	if dev == "" || !strings.HasPrefix(dev, "/dev/") {
		return
	}
	_ = os.WriteFile(filepath.Join("/sys/block", filepath.Base(dev), "device", "delete"), []byte("1"), 0)
}
