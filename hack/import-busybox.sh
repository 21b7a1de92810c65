#!/usr/bin/env bash
# Create a tiny busybox image without pulling from a registry: a rootfs made
# from the host's static busybox (package busybox-static), docker-imported.
#
#   DOCKER_HOST=unix://DIR/docker.sock hack/import-busybox.sh [TAG]   (default busybox:latest)
set -euo pipefail

tag=${1:-busybox:latest}
bb=/usr/bin/busybox

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag already present"
  exit 0
fi
# A dynamically linked busybox would not run in an empty rootfs.
if [[ $(ldd "$bb" 2>&1 || true) != *"not a dynamic executable"* ]]; then
  echo "$bb is not static; install busybox-static" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,etc,root,tmp,data}
chmod 1777 "$tmp/tmp"
cp "$bb" "$tmp/bin/busybox"
for applet in $("$bb" --list); do
  [[ $applet == busybox ]] || ln -s busybox "$tmp/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$tmp/etc/passwd"
echo 'root:x:0:' >"$tmp/etc/group"

tar -C "$tmp" --numeric-owner --owner=0 --group=0 -c . |
  docker import --change 'CMD ["sh"]' - "$tag"
