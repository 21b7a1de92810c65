// Package client speaks Docker's volume plugin protocol to a plugin's unix
// socket, as dockerd does: for tools and tests that drive a plugin directly.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
)

// Client calls one plugin.
type Client struct {
	http *http.Client
}

// New returns a client for the plugin listening on the unix socket sock.
func New(sock string) *Client {
	return &Client{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
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
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plugin/VolumeDriver."+method, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(hreq)
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
