package vboxfake

import (
	"fmt"
	"sort"
	"strconv"
)

func createMedium(r *request) (string, func(), *fault) {
	if r.c.arg("format") != "VMDK" && r.c.arg("format") != "VDI" {
		return "", nil, runtimeFault(InvalidArg, "unknown medium format %q", r.c.arg("format"))
	}
	if r.c.arg("aDeviceTypeType") != "HardDisk" || r.c.arg("accessMode") != "ReadWrite" {
		return "", nil, runtimeFault(InvalidArg, "createMedium: want a ReadWrite HardDisk, got %s %s", r.c.arg("accessMode"), r.c.arg("aDeviceTypeType"))
	}
	loc := r.c.arg("location")
	for _, m := range r.s.media {
		if m.Location == loc {
			return "", nil, runtimeFault(FileError, "Cannot create the hard disk storage unit '%s': it already exists", loc)
		}
	}
	id := r.s.uuid()
	r.s.media[id] = &Medium{ID: id, Location: loc}
	return returnvals(r.ref(&object{kind: "IMedium", key: id})), nil, nil
}

func setDescription(r *request) (string, func(), *fault) {
	m, f := r.medium()
	if f != nil {
		return "", nil, f
	}
	m.Description = r.c.arg("description")
	return "", nil, nil
}

func mediumMachines(r *request) ([]string, *fault) {
	m, f := r.medium()
	if f != nil {
		return nil, f
	}
	return attachedTo(r.s, m.ID), nil
}

func attachedTo(s *Service, mediumID string) []string {
	var ids []string
	for _, vm := range s.machines {
		for _, id := range vm.Attached {
			if id == mediumID {
				ids = append(ids, vm.ID)
				break
			}
		}
	}
	return ids
}

// finish completes a storage operation: unless the test made it fail, do
// runs, and the progress tells how it went.
func finish(r *request, do func()) string {
	if r.s.failNext[r.c.method] == "" {
		do()
	}
	return r.progress()
}

func createBaseStorage(r *request) (string, func(), *fault) {
	m, f := r.medium()
	if f != nil {
		return "", nil, f
	}
	if m.Created {
		return "", nil, runtimeFault(InvalidObjectState, "medium %s exists already", m.Location)
	}
	size, err := strconv.ParseInt(r.c.arg("logicalSize"), 10, 64)
	if err != nil || size <= 0 {
		return "", nil, runtimeFault(InvalidArg, "logicalSize %q", r.c.arg("logicalSize"))
	}
	return finish(r, func() { m.Size, m.Created = size, true }), nil, nil
}

func cloneTo(r *request) (string, func(), *fault) {
	src, f := r.medium()
	if f != nil {
		return "", nil, f
	}
	t, f := r.object("target", "IMedium")
	if f != nil {
		return "", nil, f
	}
	dst, ok := r.s.media[t.key]
	if !ok || dst.Created {
		return "", nil, runtimeFault(InvalidObjectState, "clone target must be a new medium")
	}
	return finish(r, func() { dst.Size, dst.Created = src.Size, true }), nil, nil
}

func resize(r *request) (string, func(), *fault) {
	m, f := r.medium()
	if f != nil {
		return "", nil, f
	}
	size, err := strconv.ParseInt(r.c.arg("logicalSize"), 10, 64)
	if err != nil || size < m.Size {
		return "", nil, runtimeFault(InvalidArg, "resize to %q: VirtualBox only grows media", r.c.arg("logicalSize"))
	}
	// A running machine holds its disks' write locks.
	if len(attachedTo(r.s, m.ID)) > 0 {
		return "", nil, runtimeFault(InvalidObjectState, "Failed to lock media when resizing '%s'", m.Location)
	}
	return finish(r, func() { m.Size = size }), nil, nil
}

func deleteStorage(r *request) (string, func(), *fault) {
	m, f := r.medium()
	if f != nil {
		return "", nil, f
	}
	if !m.Created {
		return "", nil, runtimeFault(InvalidObjectState, "medium '%s' has no storage to delete", m.Location)
	}
	if ids := attachedTo(r.s, m.ID); len(ids) > 0 {
		return "", nil, runtimeFault(ObjectInUse, "medium '%s' is attached to machine %s", m.Location, ids[0])
	}
	return finish(r, func() { delete(r.s.media, m.ID) }), nil, nil
}

func closeMedium(r *request) (string, func(), *fault) {
	m, f := r.medium()
	if f != nil {
		return "", nil, f
	}
	if len(attachedTo(r.s, m.ID)) > 0 {
		return "", nil, runtimeFault(ObjectInUse, "medium '%s' is attached", m.Location)
	}
	delete(r.s.media, m.ID)
	return "", nil, nil
}

func progressResult(r *request) ([]string, *fault) {
	if r.this.failText != "" {
		return []string{fmt.Sprint(FileError)}, nil
	}
	return []string{"0"}, nil
}

func progressError(r *request) ([]string, *fault) {
	if r.this.failText == "" {
		return []string{""}, nil
	}
	return []string{r.ref(&object{kind: "IVirtualBoxErrorInfo", failText: r.this.failText})}, nil
}

func findMachine(r *request) ([]string, *fault) {
	m := r.s.machine(r.c.arg("nameOrId"))
	if m == nil {
		return nil, runtimeFault(ObjectNotFound, "Could not find a registered machine named '%s'", r.c.arg("nameOrId"))
	}
	return []string{r.ref(&object{kind: "IMachine", key: m.ID})}, nil
}

func getMachines(r *request) ([]string, *fault) {
	var refs []string
	for _, m := range r.s.machines {
		refs = append(refs, r.ref(&object{kind: "IMachine", key: m.ID}))
	}
	return refs, nil
}

func machineName(r *request) ([]string, *fault) {
	m, f := r.machine()
	if f != nil {
		return nil, f
	}
	return []string{m.Name}, nil
}

func networkAdapter(r *request) ([]string, *fault) {
	slot, err := strconv.ParseInt(r.c.arg("slot"), 10, 64)
	if err != nil || slot < 0 || slot >= 8 {
		return nil, runtimeFault(InvalidArg, "Invalid slot number: %s (must be in range [0, 7])", r.c.arg("slot"))
	}
	return []string{r.ref(&object{kind: "INetworkAdapter", key: r.this.key, slot: slot})}, nil
}

func macAddress(r *request) ([]string, *fault) {
	m := r.s.machine(r.this.key)
	if m == nil || r.this.slot >= int64(len(m.MACs)) {
		return []string{""}, nil // a disabled adapter still has a slot
	}
	return []string{m.MACs[r.this.slot]}, nil
}

func sortedPorts(m *Machine) []int64 {
	ports := make([]int64, 0, len(m.Attached))
	for p := range m.Attached {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	return ports
}
