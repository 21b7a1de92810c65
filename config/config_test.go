package config

import (
	"os"
	"testing"
)

func TestFromEnv(t *testing.T) {
	t.Setenv("LINUX_VOLUME_FILEMODE", "0755")
	t.Setenv("LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_REMOVE_DISABLE", "true")
	t.Setenv("LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_CREATE_DEFAULT_FSTYPE", "xfs")
	t.Setenv("LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PREEMPT", "true")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if os.FileMode(c.LinuxFileMode) != 0o755 || !c.Ops.RemoveDisable || !c.Preempting() {
		t.Errorf("config %+v", c)
	}
	if c.DefaultFSType() != "xfs" || c.RootPath() != "/data" || c.Ops.CreateDefaultSize != "16" || !c.Ops.CreateImplicit {
		t.Errorf("defaults: fs %s root %s size %s implicit %v", c.DefaultFSType(), c.RootPath(), c.Ops.CreateDefaultSize, c.Ops.CreateImplicit)
	}
}

func TestFileModeIsOctal(t *testing.T) {
	t.Setenv("LINUX_VOLUME_FILEMODE", "0999")
	if _, err := FromEnv(); err == nil {
		t.Error("0999 accepted as a file mode")
	}
}
