#!/usr/bin/env bash
# Measures kivuli proxy beside a second kivuli proxy (the noise band),
# aws-sigv4-proxy and the floor (internal/floorproxy: the bare SDK signer
# behind httputil.ReverseProxy) with internal/proxybench, and rewrites the
# proxy section of README.md (between its markers).
#
# Usage: ASP_BIN=/path/to/aws-sigv4-proxy benchmarks/run-proxy.sh [proxybench flags]
#   (from any directory; about 6 minutes on 2 cores with the defaults)
# Knobs: REPS (default 5), DURATION (5s per small-GET run), SIZE (1GiB).
# Without ASP_BIN only kivuli proxy is measured. aws-sigv4-proxy is not
# built here: build it from its source (github.com/awslabs/aws-sigv4-proxy,
# `go build ./cmd/aws-sigv4-proxy`) and give its path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== building kivuli (../cmd/kivuli) and proxybench" >&2
go -C ../cmd/kivuli build -o "$tmp/kivuli" .
go build -o "$tmp/proxybench" ./internal/proxybench
go build -o "$tmp/floorproxy" ./internal/floorproxy
if [ -n "${ASP_BIN:-}" ] && [ ! -x "$ASP_BIN" ]; then
	echo "run-proxy.sh: ASP_BIN=$ASP_BIN is not an executable" >&2
	exit 1
fi
echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg) (2 shared cores: below 1.5 is a fair time)" >&2
"$tmp/proxybench" -kivuli "$tmp/kivuli" -asp "${ASP_BIN:-}" -floor "$tmp/floorproxy" -noise \
	-reps "${REPS:-5}" -duration "${DURATION:-5s}" -size "${SIZE:-1GiB}" -readme README.md \
	-command "ASP_BIN=aws-sigv4-proxy REPS=${REPS:-5} DURATION=${DURATION:-5s} SIZE=${SIZE:-1GiB} benchmarks/run-proxy.sh $*" "$@" \
	| tee results/proxy.md
