package virtualbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// websession is the driver's one web session with vboxwebsrv. REX-Ray
// logged on before every call; here one logon serves until the service
// forgets the session (idle timeout, vboxwebsrv restart), and then the
// operation that found out logs on again and runs once more.
type websession struct {
	soap               *soap
	username, password string

	mu   sync.Mutex
	vbox string // the session's IVirtualBox reference; "" before logon
}

// op is one driver operation inside the web session: its calls, and the
// references they returned, released when it ends so that a long-lived
// session does not pile up objects on the service.
type op struct {
	soap *soap
	vbox string
	refs []string
}

// do runs f in the web session.
func (w *websession) do(ctx context.Context, f func(*op) error) error {
	vbox, err := w.current(ctx, "")
	if err != nil {
		return err
	}
	err = w.run(ctx, vbox, f)
	if !isBadObject(err) {
		return err
	}
	// The session is gone: everything f held is void, so f runs again
	// from the start in a new one.
	if vbox, err = w.current(ctx, vbox); err != nil {
		return err
	}
	return w.run(ctx, vbox, f)
}

func (w *websession) run(ctx context.Context, vbox string, f func(*op) error) error {
	o := &op{soap: w.soap, vbox: vbox}
	defer o.release(context.WithoutCancel(ctx))
	return f(o)
}

// current is the session's IVirtualBox reference, from a new logon if there
// is none yet or the one there is equals stale.
func (w *websession) current(ctx context.Context, stale string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.vbox != "" && w.vbox != stale {
		return w.vbox, nil
	}
	var out values
	err := w.soap.call(ctx, "IWebsessionManager_logon",
		[]param{p("username", w.username), p("password", w.password)}, &out)
	var f *Fault
	if errors.As(err, &f) {
		return "", fmt.Errorf("log on to vboxwebsrv at %s as %q: %w; set VIRTUALBOX_USERNAME and VIRTUALBOX_PASSWORD, or on the VirtualBox host disable authentication with `VBoxManage setproperty websrvauthlibrary null`", w.soap.endpoint, w.username, err)
	}
	if err != nil {
		return "", err
	}
	if len(out.Returnval) == 0 || out.Returnval[0] == "" {
		return "", fmt.Errorf("log on to vboxwebsrv at %s: no session returned", w.soap.endpoint)
	}
	w.vbox = out.Returnval[0]
	return w.vbox, nil
}

// call runs method and decodes its response into out.
func (o *op) call(ctx context.Context, method string, out any, params ...param) error {
	return o.soap.call(ctx, method, params, out)
}

// value is method's one returned value ("" for none).
func (o *op) value(ctx context.Context, method string, params ...param) (string, error) {
	var out values
	if err := o.call(ctx, method, &out, params...); err != nil {
		return "", err
	}
	if len(out.Returnval) == 0 {
		return "", nil
	}
	return out.Returnval[0], nil
}

// object is method's returned object reference, released with the op.
func (o *op) object(ctx context.Context, method string, params ...param) (string, error) {
	ref, err := o.value(ctx, method, params...)
	if ref != "" {
		o.refs = append(o.refs, ref)
	}
	return ref, err
}

// objects is method's returned array of object references, released with
// the op.
func (o *op) objects(ctx context.Context, method string, params ...param) ([]string, error) {
	var out values
	if err := o.call(ctx, method, &out, params...); err != nil {
		return nil, err
	}
	o.refs = append(o.refs, out.Returnval...)
	return out.Returnval, nil
}

// release gives the op's references back; errors only mean the service
// dropped them already.
func (o *op) release(ctx context.Context) {
	for _, ref := range o.refs {
		_ = o.call(ctx, "IManagedObjectRef_release", nil, p("_this", ref))
	}
	o.refs = nil
}

// wait waits for a progress object to complete and turns its failure into
// an error with the service's text.
func (o *op) wait(ctx context.Context, progress, what string) error {
	for {
		// Wait in short slices so that ctx is honoured.
		if err := o.call(ctx, "IProgress_waitForCompletion", nil, p("_this", progress), p("timeout", int64(500))); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		done, err := o.value(ctx, "IProgress_getCompleted", p("_this", progress))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if done == "true" {
			break
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	code, err := o.value(ctx, "IProgress_getResultCode", p("_this", progress))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if code == "0" {
		return nil
	}
	text := "result code " + code
	if info, err := o.object(ctx, "IProgress_getErrorInfo", p("_this", progress)); err == nil && info != "" {
		if t, err := o.value(ctx, "IVirtualBoxErrorInfo_getText", p("_this", info)); err == nil && t != "" {
			text = t
		}
	}
	return fmt.Errorf("%s: VirtualBox says: %s", what, text)
}
