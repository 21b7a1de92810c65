// Package vboxfake is a FAKE of VirtualBox's web service (vboxwebsrv), for
// tests: VirtualBox cannot run where this project is tested. It answers the
// SOAP calls the virtualbox driver makes with envelopes shaped as the
// service's WSDL says, keeps media, machines and attachments in memory, and
// can fail the ways the real service does: a web session that expires, a
// controller with no free port, a progress that fails, a wrong password.
//
// It is not VirtualBox: it stores no disk data, and an attach makes no disk
// appear anywhere unless the test's OnAttach hook makes one.
package vboxfake

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Result codes of RuntimeFaults, as VirtualBox's.
const (
	ObjectNotFound     = int32(-2135228415) // 0x80BB0001 VBOX_E_OBJECT_NOT_FOUND
	InvalidVMState     = int32(-2135228411) // 0x80BB0005 VBOX_E_INVALID_VM_STATE
	InvalidObjectState = int32(-2135228408) // 0x80BB0008 VBOX_E_INVALID_OBJECT_STATE
	FileError          = int32(-2135228406) // 0x80BB000A VBOX_E_FILE_ERROR
	ObjectInUse        = int32(-2135228404) // 0x80BB000C VBOX_E_OBJECT_IN_USE
	InvalidArg         = int32(-2147024809) // 0x80070057 E_INVALIDARG
)

// Medium is a hard disk the fake knows.
type Medium struct {
	ID          string
	Location    string
	Size        int64
	Description string
	Created     bool // storage made; before that the medium is not listed
}

// Machine is a VM with one storage controller.
type Machine struct {
	ID, Name   string
	MACs       []string // as VirtualBox writes them: 080027A1B2C3
	Controller string
	Ports      int64
	Attached   map[int64]string // port -> medium ID (device 0)
	lockedBy   string           // the session holding the lock
}

// Service is the fake vboxwebsrv. Set Username and Password to require
// them at logon.
type Service struct {
	Username, Password string
	// OnAttach and OnDetach run when a medium is attached to or detached
	// from a machine, with the service unlocked.
	OnAttach, OnDetach func(machineID, mediumID string)

	mu       sync.Mutex
	next     int
	sessions map[string]map[string]*object // session -> ref -> object
	media    map[string]*Medium
	machines []*Machine
	failNext map[string]string // method -> text its next progress fails with
	logons   int
	calls    map[string]int
}

// object is what a managed object reference stands for.
type object struct {
	kind string // IVirtualBox, IMedium, IMachine, IProgress, ...
	key  string // medium or machine ID, controller name, ...
	slot int64
	// a progress's outcome
	failText string
	// ISession: the machine it holds locked
	machine *Machine
}

// New is an empty service.
func New() *Service {
	return &Service{
		sessions: map[string]map[string]*object{},
		media:    map[string]*Medium{},
		failNext: map[string]string{},
		calls:    map[string]int{},
	}
}

// AddMachine adds a VM with a controller of ports ports and returns its ID.
func (s *Service) AddMachine(name string, macs []string, controller string, ports int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.uuid()
	s.machines = append(s.machines, &Machine{ID: id, Name: name, MACs: macs, Controller: controller, Ports: ports, Attached: map[int64]string{}})
	return id
}

// ExpireSessions forgets every web session, as vboxwebsrv does after its
// idle timeout: every reference handed out becomes invalid.
func (s *Service) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
}

// FailNextProgress makes the progress of the next call of method (such as
// IMedium_createBaseStorage) fail with text.
func (s *Service) FailNextProgress(method, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[method] = text
}

// Logons counts successful logons.
func (s *Service) Logons() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logons
}

// Calls counts the calls of method.
func (s *Service) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// LiveRefs counts references not released, over all sessions, not
// counting each session's IVirtualBox and ISession.
func (s *Service) LiveRefs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, objs := range s.sessions {
		for _, o := range objs {
			if o.kind != "IVirtualBox" && o.kind != "ISession" {
				n++
			}
		}
	}
	return n
}

// Media lists the media, created or not, by location.
func (s *Service) Media() []Medium {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []Medium
	for _, m := range s.media {
		list = append(list, *m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Location < list[j].Location })
	return list
}

// Attached is what machine id has on its controller: port -> medium ID.
func (s *Service) Attached(id string) map[int64]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]string{}
	if m := s.machine(id); m != nil {
		for k, v := range m.Attached {
			out[k] = v
		}
	}
	return out
}

// uuid makes a new UUID-shaped ID; callers hold mu.
func (s *Service) uuid() string {
	s.next++
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", 0x3c6b0000+s.next, s.next, s.next, s.next, s.next)
}

func (s *Service) machine(nameOrID string) *Machine {
	for _, m := range s.machines {
		if m.ID == nameOrID || m.Name == nameOrID {
			return m
		}
	}
	return nil
}

// call is a decoded request: its method and parameters in order.
type call struct {
	method string
	params map[string][]string
}

func (c call) arg(name string) string {
	if v := c.params[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func decode(body []byte) (call, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	c := call{params: map[string][]string{}}
	depth := 0
	var param string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 3: // Envelope > Body > method
				c.method = t.Name.Local
			case 4:
				param = t.Name.Local
				c.params[param] = append(c.params[param], "")
			}
		case xml.CharData:
			if depth == 4 {
				v := c.params[param]
				v[len(v)-1] += string(t)
			}
		case xml.EndElement:
			depth--
		}
	}
	if c.method == "" {
		return c, fmt.Errorf("no method element in the SOAP body")
	}
	return c, nil
}

// fault is a SOAP fault to send.
type fault struct {
	text      string
	badObject string
	code      int32
}

func (f *fault) Error() string { return f.text }

func runtimeFault(code int32, format string, a ...any) *fault {
	return &fault{text: fmt.Sprintf(format, a...), code: code}
}

// ServeHTTP answers one SOAP call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "POST a SOAP envelope", http.StatusBadRequest)
		return
	}
	c, err := decode(body)
	if err != nil {
		writeFault(w, &fault{text: "bad request: " + err.Error()})
		return
	}
	out, hook, ferr := s.handle(c)
	if hook != nil {
		hook()
	}
	if ferr != nil {
		writeFault(w, ferr)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+envelopeOpen+`<vbox:%sResponse>%s</vbox:%sResponse>`+envelopeClose, c.method, out, c.method)
}

const (
	envelopeOpen = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" ` +
		`xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ` +
		`xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:vbox="http://www.virtualbox.org/"><SOAP-ENV:Body>`
	envelopeClose = `</SOAP-ENV:Body></SOAP-ENV:Envelope>`
)

func writeFault(w http.ResponseWriter, f *fault) {
	var detail string
	switch {
	case f.badObject != "":
		detail = `<vbox:InvalidObjectFault><badObjectID>` + esc(f.badObject) + `</badObjectID></vbox:InvalidObjectFault>`
	case f.code != 0:
		detail = fmt.Sprintf(`<vbox:RuntimeFault><resultCode>%d</resultCode><returnval></returnval></vbox:RuntimeFault>`, f.code)
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+envelopeOpen+
		`<SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>%s</faultstring><detail>%s</detail></SOAP-ENV:Fault>`+envelopeClose,
		esc("VirtualBox error: "+f.text), detail)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// returnvals renders values as returnval elements.
func returnvals(vals ...string) string {
	var b strings.Builder
	for _, v := range vals {
		b.WriteString("<returnval>" + esc(v) + "</returnval>")
	}
	return b.String()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
