package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/api"
	"github.com/rexray/rexray/internal/reqid"
)

// Serve answers Docker on l, running the engine (its restore first) in
// the background, until ctx is cancelled.
func (p *Plugin) Serve(ctx context.Context, l net.Listener) error {
	go p.eng.Run(ctx)
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	err := p.server().Serve(l)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// requestRead bounds the reading of a whole request, headers and body.
// dockerd sends its few hundred bytes at once: a request still arriving
// after this comes from a client that stalled or never meant to finish, and
// must not hold its connection (on TCP, one of maxConns) any longer.
const requestRead = 10 * time.Second

// idleKeep is how long a kept-alive connection may wait for its next
// request. dockerd keeps its connection to the plugin between calls; a
// short wait would race its next request more often.
const idleKeep = 2 * time.Minute

// maxHeader bounds a request's headers: dockerd's are a few hundred bytes.
const maxHeader = 16 << 10

func (p *Plugin) server() *http.Server {
	srv := &http.Server{
		Handler:        p.handler(),
		ReadTimeout:    p.readBound,
		IdleTimeout:    idleKeep,
		MaxHeaderBytes: maxHeader,
	}
	if p.grpc != nil {
		// gRPC clients on a unix socket speak HTTP/2 without TLS from the
		// first byte (prior knowledge); dockerd speaks HTTP/1.1.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		srv.Handler = byProtocol(p.grpc, srv.Handler)
	}
	return srv
}

// ServeGRPC has the endpoint answer gRPC too, with h (CSI's services,
// built by package csi): one socket serves Docker's protocol and CSI.
// Call it before Serve.
func (p *Plugin) ServeGRPC(h http.Handler) { p.grpc = h }

// byProtocol hands gRPC's requests (HTTP/2, content type application/grpc)
// to grpc and every other request to docker.
func byProtocol(grpc, docker http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			grpc.ServeHTTP(w, r)
			return
		}
		docker.ServeHTTP(w, r)
	})
}

// handler answers Docker's volume plugin protocol, and the operator CLI's
// calls under /Rexray.*. It stands in for go-plugins-helpers'
// volume.Handler, which answers a body it cannot decode in plain text: the
// protocol's answers, errors too, are JSON with the reason in Err.
func (p *Plugin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/Plugin.Activate", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, http.StatusOK, map[string][]string{"Implements": {"VolumeDriver"}})
	})
	const vd = "/VolumeDriver."
	handle(p, mux, "docker", vd+"Create", func(ctx context.Context, r *volume.CreateRequest) (any, error) { return struct{}{}, p.create(ctx, r) })
	handle(p, mux, "docker", vd+"Remove", func(ctx context.Context, r *volume.RemoveRequest) (any, error) { return struct{}{}, p.remove(ctx, r) })
	handle(p, mux, "docker", vd+"Mount", func(ctx context.Context, r *volume.MountRequest) (any, error) { return p.mount(ctx, r) })
	handle(p, mux, "docker", vd+"Unmount", func(ctx context.Context, r *volume.UnmountRequest) (any, error) { return struct{}{}, p.unmount(ctx, r) })
	handle(p, mux, "docker", vd+"Path", func(ctx context.Context, r *volume.PathRequest) (any, error) { return p.path(ctx, r) })
	handle(p, mux, "docker", vd+"Get", func(ctx context.Context, r *volume.GetRequest) (any, error) { return p.get(ctx, r) })
	handle(p, mux, "docker", vd+"List", func(ctx context.Context, _ *struct{}) (any, error) { return p.list(ctx) })
	handle(p, mux, "docker", vd+"Capabilities", func(context.Context, *struct{}) (any, error) { return p.Capabilities(), nil })
	p.adminHandlers(mux)
	// dockerd and the CLI read every answer as JSON: an unknown method too.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusNotFound, volume.ErrorResponse{Err: fmt.Sprintf(
			"unknown method %q: this plugin answers Plugin.Activate, VolumeDriver.{Create,Remove,Mount,Unmount,Path,Get,List,Capabilities} and the operator's %s* calls",
			strings.TrimPrefix(r.URL.Path, "/"), strings.TrimPrefix(api.Prefix, "/"))})
	})
	return mux
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// handle serves path with fn. A method without a request, *struct{}, reads
// no body.
func handle[Req any](p *Plugin, mux *http.ServeMux, door, path string, fn func(context.Context, *Req) (any, error)) {
	method := path[strings.LastIndex(path, ".")+1:]
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		req := new(Req)
		if _, none := any(req).(*struct{}); !none {
			// dockerd's requests are a few hundred bytes.
			body := http.MaxBytesReader(w, r.Body, maxBody)
			if err := json.NewDecoder(body).Decode(req); err != nil {
				answer(w, http.StatusBadRequest, volume.ErrorResponse{Err: badBody(method, err)})
				return
			}
		}
		// A call runs to its end (or opTimeout) even when its caller goes
		// away, as dockerd expects: half an attach helps nobody. Its
		// request ID, the caller's own if it sent one, comes back in the
		// answer's header and in its error.
		id := reqid.Given(r.Header.Get(reqid.Header))
		w.Header().Set(reqid.Header, id)
		ctx := reqid.With(context.WithoutCancel(r.Context()), id)
		start := time.Now()
		res, err := fn(ctx, req)
		if p.rec != nil {
			p.rec.Request(door, method, err, time.Since(start))
		}
		if err != nil {
			if p.log != nil {
				p.log.WithFields(logrus.Fields{"req": id, "op": method}).Warnf("%s failed: %v", method, err)
			}
			answer(w, http.StatusInternalServerError, volume.ErrorResponse{Err: reqid.Annotate(ctx, err).Error()})
			return
		}
		answer(w, http.StatusOK, res)
	})
}

// badBody is the answer to a request whose body could not be decoded.
func badBody(method string, err error) string {
	switch {
	case errors.Is(err, io.EOF) && method == "Create":
		// dockerd sends a Create again, without its body, when the
		// first attempt got no answer: the plugin stopped during it.
		return method + ": invalid request body: the body is empty. This is most likely dockerd retrying a Create whose first attempt was cut off (the plugin was stopped, restarted or killed during it); nothing was created by this request, and running the same create again is safe"
	case errors.Is(err, io.EOF):
		err = errors.New("the body is empty")
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errors.New("the request did not arrive whole in time: the connection is closed")
	}
	return fmt.Sprintf("%s: invalid request body: %v", method, err)
}

// answer writes res as JSON, the way dockerd reads it.
func answer(w http.ResponseWriter, status int, res any) {
	w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1.1+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(res)
}
