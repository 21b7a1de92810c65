#!/bin/bash
# The control channel of a VM kept running: run as the VM's command, with
# DIR shared writable (hack/vm.sh --share DIR -- hack/vm-agent.sh DIR), it
# runs every script the host puts in DIR/cmd, each in the background as
# root, and answers in DIR/out:
#   host: write DIR/cmd/ID.sh.tmp, rename it to DIR/cmd/ID.sh
#   VM:   DIR/out/ID.out (output, as it comes), then DIR/out/ID.rc (status)
# DIR/ready appears once the agent listens; DIR/stop ends it (and the VM).
set -u
dir=${1:?usage: vm-agent.sh DIR}
mkdir -p "$dir/cmd" "$dir/run" "$dir/out"
touch "$dir/ready"
shopt -s nullglob
while [[ ! -e $dir/stop ]]; do
	for f in "$dir"/cmd/*.sh; do
		id=$(basename "$f" .sh)
		mv "$f" "$dir/run/$id.sh" || continue
		(
			bash "$dir/run/$id.sh" >"$dir/out/$id.out" 2>&1 </dev/null
			echo $? >"$dir/out/$id.rc.tmp"
			mv "$dir/out/$id.rc.tmp" "$dir/out/$id.rc"
		) &
	done
	sleep 0.05
done
