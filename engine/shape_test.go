package engine

import (
	"context"
	"testing"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers/memdriver"
)

// TestStatusShowsOwnerAlwaysAndFillWhileMounted: uid, gid and mode are
// the volume's (or the defaults); used and free come from the mounted
// filesystem, and are left out once it is not mounted here.
func TestStatusShowsOwnerAlwaysAndFillWhileMounted(t *testing.T) {
	h := newHost(t, memdriver.NewStore(), "a", newFakeOS(), func(c *config.Config) { c.LinuxFileMode = 0o700 })
	h.create("v", map[string]string{"size": "64MiB", "uid": "1000", "mode": "0750"})
	h.create("w", map[string]string{"size": "64MiB"})
	h.mount("v", docker("c1"))
	st, err := h.e.Get(context.Background(), "v")
	if err != nil {
		t.Fatal(err)
	}
	f := st.Fields
	if f["uid"] != "1000" || f["gid"] != "0" || f["mode"] != "0750" || f["used"] != "1048576" || f["free"] != "1072693248" {
		t.Errorf("fields of mounted v: %v", f)
	}
	h.unmount("v", docker("c1"))
	if st, err = h.e.Get(context.Background(), "v"); err != nil || st.Fields["used"] != "" || st.Fields["free"] != "" {
		t.Errorf("fields of unmounted v: %v, %v; want no used or free", st.Fields, err)
	}
	if st, err = h.e.Get(context.Background(), "w"); err != nil || st.Fields["mode"] != "0700" || st.Fields["uid"] != "0" {
		t.Errorf("fields of w, made without owner: %v, %v; want uid 0, mode 0700 (LINUX_VOLUME_FILEMODE)", st.Fields, err)
	}
}
