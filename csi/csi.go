// Package csi is the Container Storage Interface's front door (CSI v1:
// Identity, Controller and Node) to the same engine as Docker's: Swarm's
// cluster volumes and any CSI orchestrator use the volumes, holds and
// fencing that `docker run -v` uses. It translates and checks requests,
// binds what the engine mounts (or attaches) at the paths the orchestrator
// names, and maps the engine's typed errors to gRPC codes; the rules
// themselves are the engine's.
//
// A volume's ID is its rexray name (unique across services); a snapshot's
// ID its name. A publication is a hold in the engine's ledger keyed by its
// target path (ledger.CSI for a mounted filesystem, ledger.CSIBlock for
// the device), a staging one keyed by its staging path (ledger.CSIStage),
// which holds the device attached.
package csi

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"time"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/internal/reqid"
	"github.com/rexray/rexray/mount"
)

// PluginName is the name GetPluginInfo gives.
const PluginName = "rexray"

// OS is what publishing needs of the host: package mount (HostOS), or a
// fake in tests.
type OS interface {
	Bind(source, target string, opts []string) error
	Unbind(target string) error
	IsMountPoint(path string) (bool, error)
	IsReadOnly(path string) (bool, error)
	UsageOf(path string) (mount.Usage, error)
}

// HostOS is the host's mounts, through package mount.
type HostOS struct{}

// Bind makes the target's parent too: swarmkit publishes at
// /data/published/<id> and makes no /data/published.
func (HostOS) Bind(source, target string, opts []string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return fmt.Errorf("bind %s at %s: %w", source, target, err)
	}
	return mount.Bind(source, target, opts)
}
func (HostOS) Unbind(target string) error               { return mount.Unbind(target) }
func (HostOS) IsMountPoint(path string) (bool, error)   { return mount.IsMountPoint(path) }
func (HostOS) IsReadOnly(path string) (bool, error)     { return mount.IsReadOnly(path) }
func (HostOS) UsageOf(path string) (mount.Usage, error) { return mount.UsageOf(path) }

// Options assemble a Server.
type Options struct {
	Engine *engine.Engine
	// Config gives the defaults of a volume created without a size or a
	// filesystem (CREATE_DEFAULT_SIZE, REXRAY_FSTYPE).
	Config config.Config
	// NodeID names this host to the orchestrator: the instance ID.
	NodeID  string
	Version string
	// OS is the host's mounts; nil is HostOS.
	OS  OS
	Log logrus.FieldLogger
	// Metrics, if set, counts the calls (door csi).
	Metrics Recorder
}

// Recorder counts a front door's calls (package metrics).
type Recorder interface {
	Request(door, op string, err error, took time.Duration)
}

// Server implements CSI's Identity, Controller and Node services.
type Server struct {
	spec.UnimplementedIdentityServer
	spec.UnimplementedControllerServer
	spec.UnimplementedNodeServer

	eng     *engine.Engine
	cfg     config.Config
	node    string
	version string
	os      OS
	log     logrus.FieldLogger
	rec     Recorder
}

// New is the CSI front door of o.Engine.
func New(o Options) *Server {
	if o.OS == nil {
		o.OS = HostOS{}
	}
	if o.Log == nil {
		o.Log = logrus.StandardLogger()
	}
	return &Server{eng: o.Engine, cfg: o.Config, node: o.NodeID, version: o.Version, os: o.OS, log: o.Log, rec: o.Metrics}
}

// Handler is the gRPC server of the three services, as an http.Handler
// for an endpoint that serves HTTP/2 (plugin.ServeGRPC).
func (s *Server) Handler() http.Handler {
	g := grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	spec.RegisterIdentityServer(g, s)
	spec.RegisterControllerServer(g, s)
	spec.RegisterNodeServer(g, s)
	return g
}

// intercept runs every call to its end (or the engine's bound on it) even
// when its caller goes away, as Docker's front door does: half an attach
// helps nobody. It gives the call its request ID (the caller's, from the
// metadata key x-request-id, when it sent one), maps the errors to gRPC
// codes with the ID in their message, and logs the failures.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	id := reqid.Given(callerID(ctx))
	grpc.SetHeader(ctx, metadata.Pairs(reqid.MetadataKey, id))
	ctx = reqid.With(context.WithoutCancel(ctx), id)
	res, err := handler(ctx, req)
	if s.rec != nil {
		s.rec.Request("csi", path.Base(info.FullMethod), err, time.Since(start))
	}
	log := s.logFor(ctx, volumeOf(req)).WithField("op", path.Base(info.FullMethod))
	if err != nil {
		st := statusOf(err)
		log = log.WithField("code", st.Code())
		switch st.Code() {
		case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.OutOfRange, codes.Aborted, codes.Unimplemented:
			// The caller's to act on; orchestrators ask these as questions.
			log.Infof("refused after %s: %s", time.Since(start), st.Message())
		default:
			log.Warnf("failed after %s: %s", time.Since(start), st.Message())
		}
		return nil, status.Error(st.Code(), st.Message()+" (request "+id+")")
	}
	log.Debugf("took %s", time.Since(start))
	return res, nil
}

// callerID is the request ID the caller sent in its metadata, or "".
func callerID(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if ids := md.Get(reqid.MetadataKey); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// logFor is the logger of the call in ctx (its request ID), for a volume
// when one is named.
func (s *Server) logFor(ctx context.Context, volume string) logrus.FieldLogger {
	log := s.log
	if id := reqid.From(ctx); id != "" {
		log = log.WithField("req", id)
	}
	if volume != "" {
		log = log.WithField("volume", volume)
	}
	return log
}

// volumeOf is the volume a request is about, for the log.
func volumeOf(req any) string {
	switch r := req.(type) {
	case interface{ GetVolumeId() string }:
		return r.GetVolumeId()
	case *spec.CreateVolumeRequest:
		return r.GetName()
	case *spec.CreateSnapshotRequest:
		return r.GetSourceVolumeId()
	}
	return ""
}
