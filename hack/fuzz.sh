#!/usr/bin/env bash
# Run every Go fuzz target. With FUZZTIME (e.g. 10m) each runs that long;
# without it each runs a fixed number of inputs, about 10 s here: CI's short
# form. A time limit can end a clean run with "context deadline exceeded"
# (golang/go#75804), which a count cannot. A failure leaves its input under
# the package's testdata/fuzz/, where it becomes a seed once committed.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(
	./drivers:FuzzValidateName:200000x
	./engine/options:FuzzParseSize:100000x
	./engine/options:FuzzParseCreate:100000x
	./drivers/loopback:FuzzMetadataDecode:2000x
	./plugin:FuzzHTTPHandlers:1000x
)
for t in "${targets[@]}"; do
	IFS=: read -r pkg name count <<<"$t"
	limit=${FUZZTIME:-$count}
	echo "fuzz $name in $pkg for $limit"
	# A new interesting input is minimised for 2 s, not the default 60 s.
	go test -tags integration -run '^$' -fuzz "^$name\$" -fuzztime "$limit" -fuzzminimizetime 2s "$pkg"
done
