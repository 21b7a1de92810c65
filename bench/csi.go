package main

import (
	"fmt"
	"path/filepath"
	"time"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// csiOps is section 7: the steps of a Swarm cluster volume through CSI on
// the plugin's socket, each run paired with the same step through Docker's
// volume API on the same socket (a volume of its own), so drift cancels.
func (b *bench) csiOps(p *pluginProc) error {
	conn, err := grpc.NewClient("unix://"+p.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctl, node := spec.NewControllerClient(conn), spec.NewNodeClient(conn)
	writer := &spec.VolumeCapability{
		AccessType: &spec.VolumeCapability_Mount{Mount: &spec.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &spec.VolumeCapability_AccessMode{Mode: spec.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	dir := b.scratch("csi")
	var c, d struct{ create, publish, unpublish, remove []float64 }
	for i := range b.runs {
		name := fmt.Sprintf("s7-%d", i)
		staging, target := filepath.Join(dir, "staged", name), filepath.Join(dir, "published", name)
		steps := []struct {
			into *[]float64
			call func() error
		}{
			{&c.create, func() error {
				_, err := ctl.CreateVolume(b.ctx, &spec.CreateVolumeRequest{Name: name, VolumeCapabilities: []*spec.VolumeCapability{writer},
					CapacityRange: &spec.CapacityRange{RequiredBytes: gib}})
				return err
			}},
			{&c.publish, func() error {
				if _, err := node.NodeStageVolume(b.ctx, &spec.NodeStageVolumeRequest{VolumeId: name, StagingTargetPath: staging, VolumeCapability: writer}); err != nil {
					return err
				}
				_, err := node.NodePublishVolume(b.ctx, &spec.NodePublishVolumeRequest{VolumeId: name, StagingTargetPath: staging, TargetPath: target, VolumeCapability: writer})
				return err
			}},
			{&c.unpublish, func() error {
				_, err := node.NodeUnpublishVolume(b.ctx, &spec.NodeUnpublishVolumeRequest{VolumeId: name, TargetPath: target})
				return err
			}},
			{&c.remove, func() error {
				_, err := ctl.DeleteVolume(b.ctx, &spec.DeleteVolumeRequest{VolumeId: name})
				return err
			}},
		}
		for _, st := range steps {
			ms0, err := timedCall(st.call)
			if err != nil {
				return fmt.Errorf("csi %s: %w", name, err)
			}
			*st.into = append(*st.into, ms0)
		}
		if err := b.dockerSteps(p, fmt.Sprintf("s7d-%d", i), &d.create, &d.publish, &d.unpublish, &d.remove); err != nil {
			return err
		}
	}
	const sec = "7 csi"
	b.rep.pair(sec, "CreateVolume 1 GiB ext4", "Docker: Create 1 GiB ext4", "ms", c.create, d.create)
	b.rep.pair(sec, "NodeStage+NodePublish (attach+mkfs+mount+bind)", "Docker: first Mount", "ms", c.publish, d.publish)
	b.rep.pair(sec, "NodeUnpublish (unbind+umount+detach)", "Docker: Unmount", "ms", c.unpublish, d.unpublish)
	b.rep.pair(sec, "DeleteVolume", "Docker: Remove", "ms", c.remove, d.remove)
	return nil
}

// dockerSteps times Create, the first Mount, Unmount and Remove of a new
// volume through Docker's volume API.
func (b *bench) dockerSteps(p *pluginProc, name string, create, mount, unmount, remove *[]float64) error {
	for _, st := range []struct {
		method string
		req    vreq
		into   *[]float64
	}{
		{"Create", vreq{Name: name, Opts: map[string]string{"size": "1", "newfstype": "ext4"}}, create},
		{"Mount", vreq{Name: name, ID: "a"}, mount},
		{"Unmount", vreq{Name: name, ID: "a"}, unmount},
		{"Remove", vreq{Name: name}, remove},
	} {
		d, err := p.timed(b.ctx, st.method, st.req)
		if err != nil {
			return err
		}
		*st.into = append(*st.into, ms(d))
	}
	return nil
}

func timedCall(call func() error) (float64, error) {
	start := time.Now()
	err := call()
	return ms(time.Since(start)), err
}
