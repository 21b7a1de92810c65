package ceph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers/loopdev"
	"github.com/rexray/rexray/mount"
)

// fuse attaches an image with rbd-fuse exposing that one image as a file
// (rbd-fuse -p POOL -r IMAGE MOUNTPOINT), and a loop device over the file.
// It needs only FUSE and loop devices from the kernel.
//
// Layout: <root>/<pool>/<image>/ is the FUSE mount point, <image> in it the
// file, <root>/<pool>/.<image>.log the rbd-fuse log. Nothing is remembered
// in memory: the rbd-fuse process is found by its command line in /proc and
// the loop device by its backing file, so a restarted plugin finds what the
// previous one left, reuses it when it works and clears it when it does not.
type Fuse struct {
	Root  string // <RBD_FUSEPATH>/<instance>
	Tag   string // of this instance's loop devices
	Tools Tools
}

func (f *Fuse) Method() string { return "rbd-fuse" }

func (f *Fuse) mountPoint(pool, image string) string { return filepath.Join(f.Root, pool, image) }
func (f *Fuse) file(pool, image string) string       { return filepath.Join(f.Root, pool, image, image) }

// fuseCephArgs turn librbd's cache off for rbd-fuse. rbd-fuse answers an
// fsync with success whatever rbd_flush returns, and with the cache librbd
// acknowledges a write before the OSDs hold it (writearound, the default
// policy, as much as writeback): a write acknowledged just before this host
// is fenced (blocklisted) is then lost while fsync tells the container it
// is on disk. Without the cache a write returns once the OSDs hold it, and
// one after the fence fails.
const fuseCephArgs = "--rbd_cache=false"

// fuseStart bounds how long rbd-fuse gets to connect and expose the image.
const fuseStart = 20 * time.Second

func (f *Fuse) Attach(ctx context.Context, pool, image string) (string, error) {
	dev, err := f.Device(ctx, pool, image)
	if err != nil || dev != "" {
		return dev, err
	}
	// What a previous process left but does not work: clear it.
	if err := f.Fence(ctx, pool, image); err != nil {
		return "", err
	}
	mnt := f.mountPoint(pool, image)
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return "", err
	}
	logPath := filepath.Join(f.Root, pool, "."+image+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	// -f: in the foreground, so the process is ours to track and to stop.
	// Not tied to ctx: it must outlive this call. Its own session, so that
	// signals to the plugin's process group do not reach it.
	cmd := exec.Command("rbd-fuse", "-f", "-p", pool, "-r", image, mnt)
	cmd.Env = f.Tools.Env(fuseCephArgs)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start rbd-fuse: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it whenever it ends
	file := f.file(pool, image)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(fuseStart)
	for {
		if ok, _ := isFuse(mnt); ok && fileExists(file) {
			break
		}
		select {
		case err := <-exited:
			return "", fmt.Errorf("rbd-fuse exited (%v): %s", err, tail(logPath))
		case <-ctx.Done():
			f.Fence(context.WithoutCancel(ctx), pool, image)
			return "", fmt.Errorf("rbd-fuse did not expose the image: %w; its log: %s", ctx.Err(), tail(logPath))
		case <-deadline:
			f.Fence(context.WithoutCancel(ctx), pool, image)
			return "", fmt.Errorf("rbd-fuse did not expose the image within %s; its log: %s", fuseStart, tail(logPath))
		case <-tick.C:
		}
	}
	dev, err = loopdev.Attach(file, f.Tag, false)
	if err != nil {
		f.Fence(context.WithoutCancel(ctx), pool, image)
		return "", fmt.Errorf("loop device over %s: %w", file, err)
	}
	return dev, nil
}

// device finds the loop device over the image's file while rbd-fuse serves
// it.
func (f *Fuse) Device(ctx context.Context, pool, image string) (string, error) {
	if ok, err := isFuse(f.mountPoint(pool, image)); err != nil || !ok {
		return "", err
	}
	id, err := loopdev.IDOf(f.file(pool, image))
	if err != nil {
		return "", nil // a dead rbd-fuse: ENOTCONN
	}
	bound, err := loopdev.Bound(f.Tag)
	if err != nil {
		return "", err
	}
	return bound[id], nil
}

// detach unbinds the loop device, unmounts the FUSE mount, which ends
// rbd-fuse after it flushed, and waits for it.
func (f *Fuse) Detach(ctx context.Context, pool, image string) error {
	if err := f.unloop(pool, image); err != nil {
		return err
	}
	mnt := f.mountPoint(pool, image)
	// The loop device lets go of the file once its last user closes it:
	// EBUSY until then.
	for {
		ok, err := isFuse(mnt)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		err = unix.Unmount(mnt, 0)
		if err == nil || errors.Is(err, unix.EINVAL) {
			break
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("unmount %s: %w", mnt, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("unmount %s: still busy: %w", mnt, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, pid := range f.pids(pool, image) {
		if err := stop(ctx, pid); err != nil {
			return err
		}
	}
	os.Remove(mnt)
	return nil
}

// fence: SIGKILL rbd-fuse (a blocklisted client never finishes its I/O),
// lazily unmount, unbind the loop device.
func (f *Fuse) Fence(ctx context.Context, pool, image string) error {
	for _, pid := range f.pids(pool, image) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// The loop device first: once the FUSE mount is detached, the backing
	// file's path no longer names the mount point, and unloop finds it by
	// that path. A device still mounted is released on its last close.
	if err := f.unloop(pool, image); err != nil {
		return err
	}
	mnt := f.mountPoint(pool, image)
	if ok, _ := isFuse(mnt); ok {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", mnt, err)
		}
	}
	for _, pid := range f.pids(pool, image) {
		if err := stop(ctx, pid); err != nil {
			return err
		}
	}
	os.Remove(mnt)
	return nil
}

// unloop unbinds every loop device over the image's file, found by its
// path (which stays when the file is unreachable). Once the dead FUSE mount
// is detached, the kernel names the file from the FUSE root: "/IMAGE". Such
// a device can never serve again, whoever bound it.
func (f *Fuse) unloop(pool, image string) error {
	names, err := loopdev.BoundNames()
	if err != nil {
		return err
	}
	file := f.file(pool, image)
	for dev, name := range names {
		if name == file || name == "/"+image {
			if err := loopdev.Detach(dev); err != nil {
				return err
			}
		}
	}
	return nil
}

// attached lists the images that have an rbd-fuse process or mount here.
func (f *Fuse) Attached() ([][2]string, error) {
	dirs, err := filepath.Glob(filepath.Join(f.Root, "*", "*"))
	if err != nil {
		return nil, err
	}
	var imgs [][2]string
	for _, d := range dirs {
		pool, image := filepath.Base(filepath.Dir(d)), filepath.Base(d)
		if strings.HasPrefix(image, ".") {
			continue // a log
		}
		if ok, _ := isFuse(d); ok || len(f.pids(pool, image)) > 0 {
			imgs = append(imgs, [2]string{pool, image})
		}
	}
	return imgs, nil
}

// pids are the rbd-fuse processes serving pool/image at our mount point.
func (f *Fuse) pids(pool, image string) []int {
	want := []string{"-p", pool, "-r", image, f.mountPoint(pool, image)}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) != "rbd-fuse" || len(args) < len(want) || !equal(args[len(args)-len(want):], want) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func equal(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// stop waits for pid to end, SIGTERM after 5 s, SIGKILL after 10 s.
func stop(ctx context.Context, pid int) error {
	for i := 0; ; i++ {
		if !alive(pid) {
			return nil
		}
		switch i {
		case 50:
			syscall.Kill(pid, syscall.SIGTERM)
		case 100:
			syscall.Kill(pid, syscall.SIGKILL)
		case 150:
			return fmt.Errorf("rbd-fuse (pid %d) does not end, even on SIGKILL", pid)
		}
		select {
		case <-ctx.Done():
			syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("stop rbd-fuse (pid %d): %w", pid, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// alive: the process exists and is not a zombie waiting to be reaped.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces, the state follows ")".
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// isFuse tells whether path is an rbd-fuse mount point.
func isFuse(path string) (bool, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil {
		return false, err
	}
	return len(mounts) > 0 && strings.HasPrefix(mounts[0].FSType, "fuse"), nil
}

// tail is the end of a log, for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Grow makes the loop device over pool/image's file, if attached here, as
// large as the image now is: rbd-fuse's file shows the new size once
// librbd has seen the image's header change, within fuseGrowWait.
func (f *Fuse) Grow(ctx context.Context, pool, image string, size int64) error {
	dev, err := f.Device(ctx, pool, image)
	if err != nil || dev == "" {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, fuseGrowWait)
	defer cancel()
	for {
		st, err := os.Stat(f.file(pool, image))
		if err != nil {
			return err
		}
		if st.Size() >= size {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("grow %s: rbd-fuse still shows %s as %d bytes, not %d", dev, pool+"/"+image, st.Size(), size)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return loopdev.Grow(dev)
}

// fuseGrowWait bounds how long Grow waits for rbd-fuse's file to grow.
const fuseGrowWait = 5 * time.Second

// Grown grows the loop device of each image attached here whose rbd-fuse
// file is larger than the device (another host resized the image), and
// lists those images.
func (f *Fuse) Grown(ctx context.Context) ([][2]string, error) {
	imgs, err := f.Attached()
	if err != nil {
		return nil, err
	}
	var grown [][2]string
	var errs []error
	for _, pi := range imgs {
		ok, err := f.growLoop(ctx, pi[0], pi[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %w", pi[0], pi[1], err))
		} else if ok {
			grown = append(grown, pi)
		}
	}
	return grown, errors.Join(errs...)
}

// growLoop grows pool/image's loop device to its file's size, and tells
// whether it grew.
func (f *Fuse) growLoop(ctx context.Context, pool, image string) (bool, error) {
	dev, err := f.Device(ctx, pool, image)
	if err != nil || dev == "" {
		return false, err
	}
	st, err := os.Stat(f.file(pool, image))
	if err != nil {
		return false, err
	}
	have, err := mount.DeviceSize(dev)
	if err != nil || have >= st.Size() {
		return false, err
	}
	return true, loopdev.Grow(dev)
}
