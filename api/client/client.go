// Package client speaks Docker's volume plugin protocol and the operator's
// calls (package api) to a plugin, as dockerd and the CLI do: for tools and
// tests that drive a plugin directly.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/rexray/rexray/api"
)

// Client calls one plugin.
type Client struct {
	http *http.Client
}

// New returns a client for the plugin listening on the unix socket sock.
func New(sock string) *Client { return dial("unix", sock) }

// Dial returns a client for the plugin at addr on network ("unix" or
// "tcp"), speaking TLS with tc unless tc is nil.
func Dial(network, addr string, tc *tls.Config) *Client {
	if tc == nil {
		return dial(network, addr)
	}
	d := &tls.Dialer{Config: tc}
	return &Client{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}}
}

// ForAddress returns a client for a plugin address as Docker's spec files
// give it: unix:///path.sock, a bare path, or tcp://host:port (plain HTTP).
func ForAddress(addr string) (*Client, error) {
	switch {
	case strings.HasPrefix(addr, "unix://"):
		return dial("unix", strings.TrimPrefix(addr, "unix://")), nil
	case strings.HasPrefix(addr, "/"):
		return dial("unix", addr), nil
	case strings.HasPrefix(addr, "tcp://"):
		return dial("tcp", strings.TrimPrefix(addr, "tcp://")), nil
	}
	return nil, fmt.Errorf("plugin address %q: unix:///path.sock or tcp://host:port are supported", addr)
}

func dial(network, addr string) *Client {
	return &Client{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}}
}

// Request is the body of every volume call; unused fields are left out.
type Request struct {
	Name string            `json:",omitempty"`
	ID   string            `json:",omitempty"`
	Opts map[string]string `json:",omitempty"`
}

// Response holds what any volume call can answer.
type Response struct {
	Err        string
	Mountpoint string
	Volume     *Volume
	Volumes    []*Volume
}

// Volume is a volume as the plugin describes it.
type Volume struct {
	Name       string
	Mountpoint string
	CreatedAt  string
	Status     map[string]any
}

// Call posts /VolumeDriver.<method>. A plugin's {"Err": ...} is an error.
func (c *Client) Call(ctx context.Context, method string, req Request) (*Response, error) {
	resp, err := c.post(ctx, "/VolumeDriver."+method, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: decode answer: %w", method, err)
	}
	if out.Err != "" {
		return &out, fmt.Errorf("%s %s: %s", method, req.Name, out.Err)
	}
	return &out, nil
}

// Admin posts rexray's own /Rexray.<method> (the operator CLI's calls) and
// decodes the answer into out, unless out is nil.
func (c *Client) Admin(ctx context.Context, method string, req api.Request, out any) error {
	resp, err := c.post(ctx, api.Prefix+method, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Err string }
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Err == "" {
			return fmt.Errorf("%s: the plugin answered %s", method, resp.Status)
		}
		return errors.New(e.Err)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", method, err)
	}
	return nil
}

// Events follows the plugin's events, calling fn with each, until ctx
// ends (then it returns nil), the plugin stops, or fn fails.
func (c *Client) Events(ctx context.Context, fn func(api.Event) error) error {
	resp, err := c.post(ctx, api.Prefix+api.Events, api.Request{})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: the plugin answered %s", api.Events, resp.Status)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev api.Event
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: the plugin stopped answering: %w", api.Events, err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

func (c *Client) post(ctx context.Context, path string, req any) (*http.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plugin"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	return c.http.Do(hreq)
}
