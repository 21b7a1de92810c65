//go:build integration

package plugin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/plugin/listen"
)

// serveBounded serves r's plugin on l with a read bound of readBound.
func serveBounded(r *rig, l net.Listener, readBound time.Duration) {
	r.t.Helper()
	log := logrus.New()
	log.SetOutput(testWriter{r.t})
	r.p = newPlugin(r.cfg, []engine.Service{{Name: "loopback", Driver: r.drv}}, r.mnt, r.st, log)
	r.p.readBound = readBound
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.p.Serve(ctx, l) }()
	r.t.Cleanup(func() {
		cancel()
		<-served
	})
}

// stall opens a connection to addr and sends a request whose body never
// finishes: the headers promise 100 bytes, 10 come.
func stall(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /VolumeDriver.Get HTTP/1.1\r\nHost: plugin\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Name\": \"")
	return c
}

// A request whose body never finishes is answered and its connection
// closed once the read bound runs out, instead of being held forever.
func TestStalledRequestIsCutOff(t *testing.T) {
	r := newRig(t)
	l, err := listenOn(t, config.Config{Host: "unix://" + r.dir + "/rexray.sock"})
	if err != nil {
		t.Fatal(err)
	}
	serveBounded(r, l, 300*time.Millisecond)
	c := stall(t, "unix", r.dir+"/rexray.sock")
	// Only so that a plugin that never cuts the client off fails the test
	// instead of hanging it.
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the stalled connection was never closed by the plugin: %v (read %q)", err, got)
	}
	if !strings.Contains(string(got), "did not arrive whole in time") {
		t.Errorf("the stalled client got %q, want an answer saying the request did not arrive whole in time", got)
	}
}

// On TCP, connections past the limit wait: a request on one is answered
// once a held connection ends, and the held ones cannot starve it forever.
func TestTCPConnectionsAreLimited(t *testing.T) {
	r := newRig(t)
	var logged strings.Builder
	log := logrus.New()
	log.SetOutput(&logged)
	const limit = 2
	l, err := listen.Limited(config.Config{Host: "tcp://127.0.0.1:0", HostInsecure: true}, log, limit)
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	// A bound far beyond the test, so only the limit decides.
	serveBounded(r, l, time.Hour)

	var held []net.Conn
	for range limit {
		held = append(held, stall(t, "tcp", addr))
	}
	answered := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			answered <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "POST /VolumeDriver.Capabilities HTTP/1.1\r\nHost: plugin\r\nContent-Length: 0\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a request past the limit of %d connections was served while they were all held (err %v)", limit, err)
	case <-time.After(500 * time.Millisecond):
	}
	held[0].Close()
	if err := <-answered; err != nil {
		t.Fatalf("the waiting request, once a held connection ended: %v", err)
	}
}

// listenOn opens the endpoint cfg names until the test ends.
func listenOn(t *testing.T, cfg config.Config) (net.Listener, error) {
	t.Helper()
	log := logrus.New()
	log.SetOutput(testWriter{t})
	l, err := listen.Listen(cfg, log)
	if err == nil {
		t.Cleanup(func() { l.Close() })
	}
	return l, err
}
