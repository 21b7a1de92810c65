package vboxfake

import (
	"strconv"
	"strings"
)

// A machine is changed through the mutable copy that ISession_getMachine
// gives once the session has locked it, as in VirtualBox; the fake's
// mutable machine is the machine itself, with the session recorded.

func lockMachine(r *request) (string, func(), *fault) {
	m, f := r.machine()
	if f != nil {
		return "", nil, f
	}
	sess, f := r.object("session", "ISession")
	if f != nil {
		return "", nil, f
	}
	if r.c.arg("lockType") != "Shared" && r.c.arg("lockType") != "Write" {
		return "", nil, runtimeFault(InvalidArg, "lockType %q", r.c.arg("lockType"))
	}
	if m.lockedBy != "" || sess.machine != nil {
		return "", nil, runtimeFault(InvalidObjectState, "The machine '%s' is already locked for a session (or being unlocked)", m.Name)
	}
	m.lockedBy, sess.machine = r.c.arg("session"), m
	return "", nil, nil
}

func sessionMachine(r *request) ([]string, *fault) {
	if r.this.machine == nil {
		return nil, runtimeFault(InvalidVMState, "the session is not locked")
	}
	return []string{r.ref(&object{kind: "IMachine", key: r.this.machine.ID + "#mutable"})}, nil
}

func unlockMachine(r *request) (string, func(), *fault) {
	if r.this.machine == nil {
		return "", nil, runtimeFault(InvalidVMState, "the session is not locked")
	}
	r.this.machine.lockedBy, r.this.machine = "", nil
	return "", nil, nil
}

// mutable is the machine the request's _this names, which must be a
// session's mutable machine.
func (r *request) mutable() (*Machine, *fault) {
	id, ok := strings.CutSuffix(r.this.key, "#mutable")
	m := r.s.machine(id)
	if !ok || m == nil || m.lockedBy == "" {
		return nil, runtimeFault(InvalidVMState, "%s needs the mutable machine of a locked session", r.c.method)
	}
	return m, nil
}

// controller checks that the call's name parameter is the machine's
// controller.
func (r *request) controller(m *Machine) *fault {
	if name := r.c.arg("name"); name != m.Controller {
		return runtimeFault(ObjectNotFound, "Could not find a storage controller named '%s'", name)
	}
	return nil
}

func storageController(r *request) ([]string, *fault) {
	m, f := r.mutable()
	if f != nil {
		return nil, f
	}
	if f := r.controller(m); f != nil {
		return nil, f
	}
	return []string{r.ref(&object{kind: "IStorageController", key: m.ID})}, nil
}

func portCount(r *request) ([]string, *fault) {
	m := r.s.machine(r.this.key)
	if m == nil {
		return nil, runtimeFault(ObjectNotFound, "machine %s is gone", r.this.key)
	}
	return []string{strconv.FormatInt(m.Ports, 10)}, nil
}

// mediumAttachments sends IMediumAttachment structures, as the web service
// does (the interface is wsmap="struct").
func mediumAttachments(r *request) (string, func(), *fault) {
	m := r.s.machine(strings.TrimSuffix(r.this.key, "#mutable"))
	if m == nil {
		return "", nil, runtimeFault(ObjectNotFound, "machine %s is gone", r.this.key)
	}
	if f := r.controller(m); f != nil {
		return "", nil, f
	}
	var b strings.Builder
	for _, port := range sortedPorts(m) {
		ref := r.ref(&object{kind: "IMedium", key: m.Attached[port]})
		b.WriteString("<returnval><medium>" + ref + "</medium><controller>" + esc(m.Controller) +
			"</controller><port>" + itoa(port) + "</port><device>0</device><type>HardDisk</type>" +
			"<passthrough>false</passthrough><temporaryEject>false</temporaryEject><isEjected>false</isEjected>" +
			"<nonRotational>false</nonRotational><discard>false</discard><hotPluggable>true</hotPluggable>" +
			"<bandwidthGroup/></returnval>")
	}
	return b.String(), nil, nil
}

// mutablePort is the mutable machine and the call's controllerPort,
// checked against the controller and with device 0, the only one a SATA
// port has.
func (r *request) mutablePort() (*Machine, int64, *fault) {
	m, f := r.mutable()
	if f != nil {
		return nil, 0, f
	}
	if f := r.controller(m); f != nil {
		return nil, 0, f
	}
	port, err := strconv.ParseInt(r.c.arg("controllerPort"), 10, 64)
	if err != nil || port < 0 || port >= m.Ports || r.c.arg("device") != "0" {
		return nil, 0, runtimeFault(InvalidArg, "Invalid controller port %s / device %s (the controller has %d ports)", r.c.arg("controllerPort"), r.c.arg("device"), m.Ports)
	}
	return m, port, nil
}

func attachDevice(r *request) (string, func(), *fault) {
	m, port, f := r.mutablePort()
	if f != nil {
		return "", nil, f
	}
	if r.c.arg("type") != "HardDisk" {
		return "", nil, runtimeFault(InvalidArg, "type %q", r.c.arg("type"))
	}
	med, f := r.object("medium", "IMedium")
	if f != nil {
		return "", nil, f
	}
	if _, busy := m.Attached[port]; busy {
		return "", nil, runtimeFault(ObjectInUse, "Medium is already attached to port %d, device 0 of controller '%s' of this virtual machine", port, m.Controller)
	}
	if medium, ok := r.s.media[med.key]; !ok || !medium.Created {
		return "", nil, runtimeFault(ObjectNotFound, "medium %s is gone", med.key)
	}
	if len(attachedTo(r.s, med.key)) > 0 {
		return "", nil, runtimeFault(ObjectInUse, "Medium is already associated with another machine")
	}
	m.Attached[port] = med.key
	return "", hookFor(r.s.OnAttach, m.ID, med.key), nil
}

func detachDevice(r *request) (string, func(), *fault) {
	m, port, f := r.mutablePort()
	if f != nil {
		return "", nil, f
	}
	id, ok := m.Attached[port]
	if !ok {
		return "", nil, runtimeFault(ObjectNotFound, "No storage device attached to device slot 0 on port %d of controller '%s'", port, m.Controller)
	}
	delete(m.Attached, port)
	return "", hookFor(r.s.OnDetach, m.ID, id), nil
}

func saveSettings(r *request) (string, func(), *fault) {
	_, f := r.mutable()
	return "", nil, f
}

func hookFor(h func(string, string), machine, medium string) func() {
	if h == nil {
		return nil
	}
	return func() { h(machine, medium) }
}
