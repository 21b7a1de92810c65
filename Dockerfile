# The plugin rootfs, for those who build plugins from an image. Nothing is
# pulled: `make plugin` assembles build/plugin/rootfs from this machine's
# static rexray build and Debian's mkfs/blkid, and this only copies it.
#   make plugin && docker build -t rexray-rootfs .
#   id=$(docker create rexray-rootfs true) && docker export "$id" | tar -x -C rootfs
FROM scratch
COPY build/plugin/rootfs/ /
ENTRYPOINT ["/usr/bin/rexray", "serve"]
