package virtualbox

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// The web service speaks SOAP 1.1, document/literal, as its WSDL (generated
// from VirtualBox.xidl) describes: a request element vbox:<Interface>_<method>
// whose children are the method's parameters, "_this" first for a method of
// an object; a response element <Interface>_<method>Response holding one
// "returnval" per returned value. The parameters' elements are unqualified,
// as vboxwebsrv writes its own (<returnval>), and as the client generated
// from the WSDL that REX-Ray's libStorage used sent them. Objects are managed object references,
// strings of the form "<websession>-<object>", valid until the web session
// ends or they are released.

const (
	soapNS = "http://schemas.xmlsoap.org/soap/envelope/"
	vboxNS = "http://www.virtualbox.org/"
)

// param is one parameter of a call. A []string value is an array: the
// element repeated once per item.
type param struct {
	name  string
	value any // string, bool, int64, []string
}

func p(name string, value any) param { return param{name, value} }

// Fault is a SOAP fault from vboxwebsrv.
type Fault struct {
	Method string
	Code   string
	String string
	// BadObject is set when the service no longer knows a reference: an
	// expired web session (idle longer than vboxwebsrv's -t, 300 s by
	// default) or a released object.
	BadObject string
	// ResultCode is a RuntimeFault's COM result, e.g. VBOX_E_OBJECT_NOT_FOUND.
	ResultCode int32
}

func (f *Fault) Error() string {
	msg := f.String
	if msg == "" {
		msg = f.Code
	}
	if f.ResultCode != 0 {
		msg += fmt.Sprintf(" (result code 0x%08x)", uint32(f.ResultCode))
	}
	return f.Method + ": " + msg
}

// COM result codes the driver tells apart.
const vboxObjectNotFound = int32(-2135228415) // 0x80BB0001, VBOX_E_OBJECT_NOT_FOUND

func isNotFound(err error) bool {
	var f *Fault
	return errors.As(err, &f) && f.ResultCode == vboxObjectNotFound
}

func isBadObject(err error) bool {
	var f *Fault
	return errors.As(err, &f) && f.BadObject != ""
}

// soap posts calls to one endpoint.
type soap struct {
	endpoint string
	http     *http.Client
}

// envelope is what comes back: a response element or a fault.
type envelope struct {
	Body struct {
		Inner []byte `xml:",innerxml"`
		Fault *struct {
			Code   string `xml:"faultcode"`
			String string `xml:"faultstring"`
			Detail struct {
				Invalid *struct {
					BadObjectID string `xml:"badObjectID"`
				} `xml:"InvalidObjectFault"`
				Runtime *struct {
					ResultCode int32 `xml:"resultCode"`
				} `xml:"RuntimeFault"`
			} `xml:"detail"`
		} `xml:"Fault"`
	} `xml:"Body"`
}

// call sends method with params and decodes the response element into out
// (a struct whose fields name the response's children), if out is not nil.
func (s *soap) call(ctx context.Context, method string, params []param, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(request(method, params)))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `""`)
	resp, err := s.http.Do(req)
	if err != nil {
		return &unreachableError{endpoint: s.endpoint, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: read response: %w", method, err)
	}
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: HTTP %s from %s is not a SOAP envelope (is VIRTUALBOX_ENDPOINT vboxwebsrv?): %w", method, resp.Status, s.endpoint, err)
	}
	if f := env.Body.Fault; f != nil {
		fault := &Fault{Method: method, Code: f.Code, String: f.String}
		if f.Detail.Invalid != nil {
			fault.BadObject = f.Detail.Invalid.BadObjectID
			if fault.BadObject == "" {
				fault.BadObject = "(unnamed)"
			}
		}
		if f.Detail.Runtime != nil {
			fault.ResultCode = f.Detail.Runtime.ResultCode
		}
		return fault
	}
	if out == nil {
		return nil
	}
	if err := xml.Unmarshal(env.Body.Inner, out); err != nil {
		return fmt.Errorf("%s: decode response: %w", method, err)
	}
	return nil
}

// request is the SOAP envelope of one call.
func request(method string, params []param) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` +
		`<soap:Envelope xmlns:soap="` + soapNS + `" xmlns:vbox="` + vboxNS + `"><soap:Body>`)
	b.WriteString("<vbox:" + method + ">")
	for _, p := range params {
		var items []string
		switch v := p.value.(type) {
		case string:
			items = []string{v}
		case []string:
			items = v
		case bool:
			items = []string{strconv.FormatBool(v)}
		case int64:
			items = []string{strconv.FormatInt(v, 10)}
		default:
			panic(fmt.Sprintf("virtualbox: parameter %s of %s has type %T", p.name, method, v))
		}
		for _, item := range items {
			b.WriteString("<" + p.name + ">")
			_ = xml.EscapeText(&b, []byte(item)) // writes to a bytes.Buffer cannot fail
			b.WriteString("</" + p.name + ">")
		}
	}
	b.WriteString("</vbox:" + method + "></soap:Body></soap:Envelope>")
	return b.Bytes()
}

// unreachableError is a call that got no HTTP answer at all.
type unreachableError struct {
	endpoint string
	err      error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("vboxwebsrv not reachable at %s (VIRTUALBOX_ENDPOINT): %v; on the VirtualBox host run `vboxwebsrv -H 0.0.0.0`, and check that this host can reach it", e.endpoint, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// values is a response of returnvals that are plain text.
type values struct {
	Returnval []string `xml:"returnval"`
}
