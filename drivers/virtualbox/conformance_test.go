package virtualbox

import (
	"os"
	"testing"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/drivertest"
)

// Two VMs of one (fake) VirtualBox host, sharing its disks. A device is
// the file the fake made for the disk in that VM's folders, as udev
// would make /dev/sdX.
func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Hosts: func(t *testing.T) (a, b drivers.Driver) {
			w := newWorld(t)
			vmA, vmB := w.addVM(t, "vm-a"), w.addVM(t, "vm-b")
			w.plugDisks(t, vmA, vmB)
			return vmA.d, vmB.d
		},
		CheckDevice: func(t *testing.T, host drivers.Driver, dev string) {
			if st, err := os.Stat(dev); err != nil || !st.Mode().IsRegular() {
				t.Errorf("device %s: %v, want the disk's file in the guest", dev, err)
			}
		},
	})
}
