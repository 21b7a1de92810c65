package vboxfake

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// handle runs one call under the lock. hook, if set, runs after the lock
// is released (OnAttach, OnDetach).
func (s *Service) handle(c call) (out string, hook func(), f *fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[c.method]++
	if c.method == "IWebsessionManager_logon" {
		return s.logon(c)
	}
	// Every other call names an object of a live session: _this, or the
	// session's IVirtualBox for getSessionObject.
	ref := c.arg("_this")
	if c.method == "IWebsessionManager_getSessionObject" {
		ref = c.arg("refIVirtualBox")
	}
	sess, this, f := s.resolve(ref)
	if f != nil {
		return "", nil, f
	}
	h, ok := handlers[c.method]
	if !ok {
		return "", nil, &fault{text: "method " + c.method + " is not in the fake"}
	}
	if want := strings.SplitN(c.method, "_", 2)[0]; want != this.kind && want != "IManagedObjectRef" && want != "IWebsessionManager" {
		return "", nil, runtimeFault(InvalidArg, "%s called on a %s", c.method, this.kind)
	}
	return h(&request{s: s, c: c, sess: sess, this: this})
}

func (s *Service) logon(c call) (string, func(), *fault) {
	if (s.Username != "" || s.Password != "") && (c.arg("username") != s.Username || c.arg("password") != s.Password) {
		return "", nil, &fault{text: "Invalid username or password"}
	}
	s.logons++
	sess := fmt.Sprintf("%016x", 0xa11ce0000+s.logons)
	s.sessions[sess] = map[string]*object{}
	req := &request{s: s, sess: sess}
	return returnvals(req.ref(&object{kind: "IVirtualBox"})), nil, nil
}

// resolve finds a reference's session and object.
func (s *Service) resolve(ref string) (string, *object, *fault) {
	sess, _, _ := strings.Cut(ref, "-")
	if o, ok := s.sessions[sess][ref]; ok {
		return sess, o, nil
	}
	return "", nil, &fault{text: fmt.Sprintf("Invalid managed object reference %q", ref), badObject: ref}
}

// request is a call being answered.
type request struct {
	s    *Service
	c    call
	sess string
	this *object
}

// ref hands out a new reference to o in the request's session.
func (r *request) ref(o *object) string {
	r.s.next++
	id := fmt.Sprintf("%s-%016x", r.sess, r.s.next)
	r.s.sessions[r.sess][id] = o
	return id
}

// object resolves a reference given as parameter name.
func (r *request) object(name, kind string) (*object, *fault) {
	_, o, f := r.s.resolve(r.c.arg(name))
	if f != nil {
		return nil, f
	}
	if o.kind != kind {
		return nil, runtimeFault(InvalidArg, "%s: %s is a %s, not a %s", r.c.method, name, o.kind, kind)
	}
	return o, nil
}

func (r *request) medium() (*Medium, *fault) {
	m, ok := r.s.media[r.this.key]
	if !ok {
		return nil, runtimeFault(ObjectNotFound, "medium %s is gone", r.this.key)
	}
	return m, nil
}

func (r *request) machine() (*Machine, *fault) {
	m := r.s.machine(r.this.key)
	if m == nil {
		return nil, runtimeFault(ObjectNotFound, "machine %s is gone", r.this.key)
	}
	return m, nil
}

// progress is a finished progress object, failed if the test asked.
func (r *request) progress() string {
	text := r.s.failNext[r.c.method]
	delete(r.s.failNext, r.c.method)
	return returnvals(r.ref(&object{kind: "IProgress", failText: text}))
}

type handler func(*request) (string, func(), *fault)

// value wraps a handler that only returns values.
func value(f func(*request) ([]string, *fault)) handler {
	return func(r *request) (string, func(), *fault) {
		v, err := f(r)
		return returnvals(v...), nil, err
	}
}

func mediumValue(f func(*Medium) string) handler {
	return value(func(r *request) ([]string, *fault) {
		m, err := r.medium()
		if err != nil {
			return nil, err
		}
		return []string{f(m)}, nil
	})
}

// handlers are the methods the fake answers.
var handlers = map[string]handler{
	"IManagedObjectRef_release": func(r *request) (string, func(), *fault) {
		delete(r.s.sessions[r.sess], r.c.arg("_this"))
		return "", nil, nil
	},
	"IWebsessionManager_getSessionObject": value(func(r *request) ([]string, *fault) {
		for ref, o := range r.s.sessions[r.sess] {
			if o.kind == "ISession" {
				return []string{ref}, nil
			}
		}
		return []string{r.ref(&object{kind: "ISession"})}, nil
	}),
	"IVirtualBox_getHardDisks": value(func(r *request) ([]string, *fault) {
		var ids []string
		for id, m := range r.s.media {
			if m.Created {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		refs := make([]string, len(ids))
		for i, id := range ids {
			refs[i] = r.ref(&object{kind: "IMedium", key: id})
		}
		return refs, nil
	}),
	"IVirtualBox_createMedium":                  createMedium,
	"IVirtualBox_findMachine":                   value(findMachine),
	"IVirtualBox_getMachines":                   value(getMachines),
	"IMedium_getId":                             mediumValue(func(m *Medium) string { return m.ID }),
	"IMedium_getLocation":                       mediumValue(func(m *Medium) string { return m.Location }),
	"IMedium_getLogicalSize":                    mediumValue(func(m *Medium) string { return strconv.FormatInt(m.Size, 10) }),
	"IMedium_getDescription":                    mediumValue(func(m *Medium) string { return m.Description }),
	"IMedium_getMachineIds":                     value(mediumMachines),
	"IMedium_setDescription":                    setDescription,
	"IMedium_createBaseStorage":                 createBaseStorage,
	"IMedium_cloneTo":                           cloneTo,
	"IMedium_resize":                            resize,
	"IMedium_deleteStorage":                     deleteStorage,
	"IMedium_close":                             closeMedium,
	"IProgress_waitForCompletion":               func(*request) (string, func(), *fault) { return "", nil, nil },
	"IProgress_getCompleted":                    value(func(*request) ([]string, *fault) { return []string{"true"}, nil }),
	"IProgress_getResultCode":                   value(progressResult),
	"IProgress_getErrorInfo":                    value(progressError),
	"IVirtualBoxErrorInfo_getText":              value(func(r *request) ([]string, *fault) { return []string{r.this.failText}, nil }),
	"IMachine_getId":                            value(func(r *request) ([]string, *fault) { return []string{r.this.key}, nil }),
	"IMachine_getName":                          value(machineName),
	"IMachine_getNetworkAdapter":                value(networkAdapter),
	"INetworkAdapter_getMACAddress":             value(macAddress),
	"IMachine_lockMachine":                      lockMachine,
	"ISession_getMachine":                       value(sessionMachine),
	"ISession_unlockMachine":                    unlockMachine,
	"IMachine_getStorageControllerByName":       value(storageController),
	"IStorageController_getPortCount":           value(portCount),
	"IMachine_getMediumAttachmentsOfController": mediumAttachments,
	"IMachine_attachDevice":                     attachDevice,
	"IMachine_detachDevice":                     detachDevice,
	"IMachine_saveSettings":                     saveSettings,
}
