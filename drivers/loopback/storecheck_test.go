package loopback

import (
	"strings"
	"testing"
)

// An NFS store mounted with nocto is refused, naming the export and the
// options to use; NFS's defaults, v3 and v4.2, are accepted.
func TestCheckNFS(t *testing.T) {
	for _, opts := range []string{
		"rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.2,local_lock=none,addr=10.0.0.1",
		"rw,vers=3,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr=10.0.0.1,mountvers=3,mountport=20048,mountproto=udp,local_lock=none,addr=10.0.0.1",
		"rw,vers=4.2,actimeo=0,lookupcache=none",
	} {
		if err := checkNFS("/mnt/store", "srv:/export", opts); err != nil {
			t.Errorf("options %s refused: %v", opts, err)
		}
	}
	err := checkNFS("/mnt/store", "srv:/export", "rw,vers=3,nocto,hard,proto=tcp")
	if err == nil {
		t.Fatal("nocto accepted")
	}
	for _, want := range []string{"/mnt/store", "srv:/export", "nocto", "close-to-open", "vers=4.2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
}
