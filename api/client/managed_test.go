package client

import "testing"

func TestHostPath(t *testing.T) {
	id := "4eb7fb1ed5105203983b8afe49231c317a4004c0c72c08803da7404d9c27b7bc"
	cases := []struct{ addr, mp, want string }{
		{"unix:///run/docker/plugins/" + id + "/rexray.sock", "/data/volumes/db/data",
			"/var/lib/docker/plugins/" + id + "/propagated-mount/volumes/db/data"},
		{"unix:///run/docker/plugins/" + id + "/rexray.sock", "/data/published/x1",
			"/var/lib/docker/plugins/" + id + "/propagated-mount/published/x1"},
		// a plugin whose propagated mount was its mount root
		{"unix:///run/docker/plugins/" + id + "/rexray.sock", "/var/lib/rexray/volumes/db/data",
			"/var/lib/docker/plugins/" + id + "/propagated-mount/db/data"},
		// host mode: the plugin's paths are the host's
		{"unix:///run/docker/plugins/rexray.sock", "/var/lib/rexray/volumes/db/data", "/var/lib/rexray/volumes/db/data"},
		{"tcp://10.0.0.1:7981", "/var/lib/rexray/volumes/db/data", "/var/lib/rexray/volumes/db/data"},
		// not under the propagated mount: left alone
		{"unix:///run/docker/plugins/" + id + "/rexray.sock", "/var/lib/rexray/volumesx/db", "/var/lib/rexray/volumesx/db"},
		{"unix:///run/docker/plugins/" + id + "/rexray.sock", "/datax/db", "/datax/db"},
		{"unix:///run/docker/plugins/" + id + "/rexray.sock", "", ""},
	}
	for _, c := range cases {
		if got := HostPath(ManagedID(c.addr), DefaultDockerRoot, "/var/lib/rexray/volumes", c.mp); got != c.want {
			t.Errorf("HostPath(%s, %s) = %s, want %s", c.addr, c.mp, got, c.want)
		}
	}
}
