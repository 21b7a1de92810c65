package virtualbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/rexray/rexray/drivers"
)

// maxAdapters is how many network adapter slots are searched for this
// host's MAC address: the PIIX3 chipset's 8. A slot past the machine's last
// ends the search early.
const maxAdapters = 8

// InstanceID implements drivers.Identifier: this VM's machine UUID.
func (d *Driver) InstanceID(ctx context.Context) (string, error) {
	var id string
	err := d.ws.do(ctx, func(o *op) error {
		var err error
		_, id, err = d.self(ctx, o)
		return err
	})
	return id, err
}

// self is this VM: its reference in the op and its UUID. The UUID is
// looked up once; VIRTUALBOX_LOCALMACHINENAMEORID names the machine, else
// the MAC addresses of this host's interfaces find it.
func (d *Driver) self(ctx context.Context, o *op) (ref, id string, err error) {
	d.idMu.Lock()
	id = d.id
	d.idMu.Unlock()
	key := id
	if key == "" {
		key = d.cfg.LocalMachineNameOrID
	}
	if key == "" {
		if ref, id, err = d.byMAC(ctx, o); err != nil {
			return "", "", err
		}
	} else {
		ref, err = o.object(ctx, "IVirtualBox_findMachine", p("_this", o.vbox), p("nameOrId", key))
		if isNotFound(err) {
			return "", "", fmt.Errorf("no VirtualBox machine is named or has the UUID %q (VIRTUALBOX_LOCALMACHINENAMEORID)", key)
		}
		if err != nil {
			return "", "", fmt.Errorf("find this machine: %w", err)
		}
		if id, err = o.value(ctx, "IMachine_getId", p("_this", ref)); err != nil {
			return "", "", fmt.Errorf("find this machine: %w", err)
		}
	}
	d.idMu.Lock()
	d.id = id
	d.idMu.Unlock()
	return ref, id, nil
}

// byMAC finds the machine one of whose network adapters has a MAC address
// of this host.
func (d *Driver) byMAC(ctx context.Context, o *op) (ref, id string, err error) {
	macs, err := localMACs()
	if err != nil {
		return "", "", err
	}
	machines, err := o.objects(ctx, "IVirtualBox_getMachines", p("_this", o.vbox))
	if err != nil {
		return "", "", fmt.Errorf("find this machine by MAC address: %w", err)
	}
	for _, m := range machines {
		for slot := range int64(maxAdapters) {
			adapter, err := o.object(ctx, "IMachine_getNetworkAdapter", p("_this", m), p("slot", slot))
			var f *Fault
			if errors.As(err, &f) && f.BadObject == "" {
				break // past the machine's last slot
			}
			if err != nil {
				return "", "", fmt.Errorf("find this machine by MAC address: %w", err)
			}
			mac, err := o.value(ctx, "INetworkAdapter_getMACAddress", p("_this", adapter))
			if err != nil {
				return "", "", fmt.Errorf("find this machine by MAC address: %w", err)
			}
			if slices.Contains(macs, strings.ToUpper(mac)) {
				id, err := o.value(ctx, "IMachine_getId", p("_this", m))
				if err != nil {
					return "", "", fmt.Errorf("find this machine by MAC address: %w", err)
				}
				return m, id, nil
			}
		}
	}
	return "", "", fmt.Errorf("no VirtualBox machine has a network adapter with this host's MAC addresses (%s): set VIRTUALBOX_LOCALMACHINENAMEORID to this VM's name or UUID", strings.Join(macs, ", "))
}

// localMACs are this host's MAC addresses as VirtualBox writes them:
// 080027A1B2C3.
func localMACs() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var macs []string
	for _, i := range ifs {
		if len(i.HardwareAddr) == 6 {
			macs = append(macs, strings.ToUpper(strings.ReplaceAll(i.HardwareAddr.String(), ":", "")))
		}
	}
	if len(macs) == 0 {
		return nil, errors.New("this host has no network interface with a MAC address to find its VirtualBox machine by: set VIRTUALBOX_LOCALMACHINENAMEORID")
	}
	return macs, nil
}

// attachment is one IMediumAttachment, which the web service sends as a
// structure rather than an object.
type attachment struct {
	Medium     string `xml:"medium"`
	Controller string `xml:"controller"`
	Port       int64  `xml:"port"`
	Device     int64  `xml:"device"`
	Type       string `xml:"type"`
}

// locked runs f with machine (a reference) locked for changes, shared, as
// a running VM allows, and saves what f changed. f gets the mutable
// machine.
func (d *Driver) locked(ctx context.Context, o *op, machine string, f func(mutable string) error) error {
	d.machineMu.Lock()
	defer d.machineMu.Unlock()
	// The web session's own ISession: kept, not released with the op.
	session, err := o.value(ctx, "IWebsessionManager_getSessionObject", p("refIVirtualBox", o.vbox))
	if err != nil {
		return err
	}
	if err := o.call(ctx, "IMachine_lockMachine", nil, p("_this", machine), p("session", session), p("lockType", "Shared")); err != nil {
		return fmt.Errorf("lock the machine: %w", err)
	}
	defer func() { _ = o.call(context.WithoutCancel(ctx), "ISession_unlockMachine", nil, p("_this", session)) }()
	mutable, err := o.object(ctx, "ISession_getMachine", p("_this", session))
	if err != nil {
		return err
	}
	if err := f(mutable); err != nil {
		return err
	}
	if err := o.call(ctx, "IMachine_saveSettings", nil, p("_this", mutable)); err != nil {
		return fmt.Errorf("save the machine's settings: %w", err)
	}
	return nil
}

// attachments lists what is attached to a controller of machine.
func (d *Driver) attachments(ctx context.Context, o *op, machine, controller string) ([]attachment, error) {
	var out struct {
		Returnval []attachment `xml:"returnval"`
	}
	if err := o.call(ctx, "IMachine_getMediumAttachmentsOfController", &out, p("_this", machine), p("name", controller)); err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("the machine has no storage controller named %s (VIRTUALBOX_CONTROLLERNAME): %w", controller, err)
		}
		return nil, err
	}
	for _, a := range out.Returnval {
		if a.Medium != "" {
			o.refs = append(o.refs, a.Medium)
		}
	}
	return out.Returnval, nil
}

// freePort is the first port of controller with nothing on device 0.
func (d *Driver) freePort(ctx context.Context, o *op, mutable string) (int64, error) {
	name := d.cfg.ControllerName
	ctl, err := o.object(ctx, "IMachine_getStorageControllerByName", p("_this", mutable), p("name", name))
	if err != nil {
		if isNotFound(err) {
			return 0, fmt.Errorf("the machine has no storage controller named %s (VIRTUALBOX_CONTROLLERNAME)", name)
		}
		return 0, err
	}
	count, err := o.value(ctx, "IStorageController_getPortCount", p("_this", ctl))
	if err != nil {
		return 0, err
	}
	ports, err := strconv.ParseInt(count, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("port count %q of controller %s: %w", count, name, err)
	}
	atts, err := d.attachments(ctx, o, mutable, name)
	if err != nil {
		return 0, err
	}
	for port := range ports {
		if !slices.ContainsFunc(atts, func(a attachment) bool { return a.Port == port && a.Device == 0 }) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port on controller %s: all %d are in use; add ports on the VirtualBox host (VBoxManage storagectl VM --name %s --portcount N, up to 30)", name, ports, name)
}

// Attach implements drivers.Driver: the volume's medium goes on the next
// free port of this VM's controller, and its disk is found in the guest.
// A medium attached to another VM is taken from it only with force; the
// other VM loses the disk (a hot unplug), which fences it.
func (d *Driver) Attach(ctx context.Context, name string, force bool) (string, error) {
	if err := drivers.ValidateName(name); err != nil {
		return "", err
	}
	var id string
	err := d.do(ctx, func(o *op) error {
		self, selfID, m, err := d.selfAnd(ctx, o, name)
		if err != nil {
			return err
		}
		id = m.id
		if slices.Contains(m.machines, selfID) {
			return nil
		}
		if err := d.takeFromOthers(ctx, o, m, force); err != nil {
			return err
		}
		return d.locked(ctx, o, self, func(mutable string) error {
			port, err := d.freePort(ctx, o, mutable)
			if err != nil {
				return err
			}
			return o.call(ctx, "IMachine_attachDevice", nil, p("_this", mutable), p("name", d.cfg.ControllerName),
				p("controllerPort", port), p("device", int64(0)), p("type", "HardDisk"), p("medium", m.ref))
		})
	})
	if err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	dev, err := d.guest.device(ctx, id)
	if err != nil {
		// A disk this guest cannot see is no use attached: give it back.
		if derr := d.Detach(context.WithoutCancel(ctx), name); derr != nil {
			err = fmt.Errorf("%w (and giving it back failed: %v)", err, derr)
		}
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	return dev, nil
}

// selfAnd is this VM (reference and UUID) and volume name's medium.
func (d *Driver) selfAnd(ctx context.Context, o *op, name string) (self, selfID string, m medium, err error) {
	if self, selfID, err = d.self(ctx, o); err != nil {
		return
	}
	m, err = d.find(ctx, o, name)
	return
}

// takeFromOthers detaches m from the other VMs that have it, if force
// allows.
func (d *Driver) takeFromOthers(ctx context.Context, o *op, m medium, force bool) error {
	if len(m.machines) > 0 && !force {
		return &drivers.HeldError{Volume: m.name, Holder: "machine " + strings.Join(d.machineNames(ctx, o, m.machines), ", ")}
	}
	for _, other := range m.machines {
		if err := d.detachFrom(ctx, o, other, m.id); err != nil {
			return fmt.Errorf("take volume %s from machine %s: %w", m.name, other, err)
		}
	}
	return nil
}

// Detach implements drivers.Driver.
func (d *Driver) Detach(ctx context.Context, name string) error {
	if err := drivers.ValidateName(name); err != nil {
		return err
	}
	err := d.do(ctx, func(o *op) error {
		_, selfID, m, err := d.selfAnd(ctx, o, name)
		if err != nil {
			return err
		}
		if !slices.Contains(m.machines, selfID) {
			return nil
		}
		d.guest.release(m.id)
		return d.detachFrom(ctx, o, selfID, m.id)
	})
	if err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	return nil
}

// detachFrom takes the medium mediumID off machine machineID, wherever
// it is attached there.
func (d *Driver) detachFrom(ctx context.Context, o *op, machineID, mediumID string) error {
	machine, err := o.object(ctx, "IVirtualBox_findMachine", p("_this", o.vbox), p("nameOrId", machineID))
	if err != nil {
		return err
	}
	return d.locked(ctx, o, machine, func(mutable string) error {
		atts, err := d.attachments(ctx, o, mutable, d.cfg.ControllerName)
		if err != nil {
			return err
		}
		for _, a := range atts {
			if a.Medium == "" {
				continue
			}
			id, err := o.value(ctx, "IMedium_getId", p("_this", a.Medium))
			if err != nil {
				return err
			}
			if id != mediumID {
				continue
			}
			if err := o.call(ctx, "IMachine_detachDevice", nil, p("_this", mutable), p("name", a.Controller),
				p("controllerPort", a.Port), p("device", a.Device)); err != nil {
				return err
			}
		}
		return nil
	})
}
