#!/usr/bin/env bash
# Runs the benchmarks of this module (kivuli against floor and its peers),
# summarises them with benchstat, computes the targets of issue 4, and
# rewrites the results section of README.md (between its markers).
#
# Usage: benchmarks/run.sh   (from any directory; about 5 minutes on 2 cores)
# Knobs: COUNT (default 10: each of the five implementations leads two rounds), BENCHTIME (1s),
# BENCHTIME_64MIB (20x), BENCHTIME_UPLOADS (5x: four 64 MiB uploads at once).
# Raw output is kept in benchmarks/results/ for later comparisons
# (benchstat old.txt results/bench.txt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
start=$SECONDS

count=${COUNT:-10}
benchtime=${BENCHTIME:-1s}
benchtime64=${BENCHTIME_64MIB:-20x}
benchtimeUploads=${BENCHTIME_UPLOADS:-5x}

step() { printf '\n== %s\n' "$*" >&2; }

# benchstat: on PATH, or in GOBIN / GOPATH/bin, or installed there.
benchstat=$(command -v benchstat || true)
if [ -z "$benchstat" ]; then
	gobin=$(go env GOBIN)
	[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
	if [ ! -x "$gobin/benchstat" ]; then
		step "installing benchstat"
		# pinned: internal/report reads benchstat's CSV output
		go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
	fi
	benchstat=$gobin/benchstat
fi

# Everything is written to a temporary directory first, and moved to
# results/ only once the report is written: a failed or interrupted run
# leaves results/ and README.md as they were, and in step.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/results
mkdir -p "$out"
raw=$out/bench.txt
: >"$raw"
: >"$out/commands.txt"

step "the implementations sign valid, equivalent requests"
go test -count 1 -run '^TestImplementationsSignValidRequests$' .

step "storm test"
storm_ok=1
rm -f "$out/storm.txt"
if ! KIVULI_STORM_RESULT="$out/storm.txt" go test -count 1 -run '^TestStorm$' -v . >"$out/storm.log" 2>&1; then
	storm_ok=0
	cat "$out/storm.log" >&2
fi
grep -h 'storm:' "$out/storm.txt" 2>/dev/null >&2 || true

# go test -count N repeats each sub-benchmark N times back to back, so
# that a slow few seconds on a shared machine land on one implementation.
# Instead the test binary is built once and run COUNT rounds of -count 1,
# each round in a rotated order of implementations (KIVULI_BENCH_ROUND):
# every implementation's samples are spread over the whole run. Small and
# 1 MiB workloads run for a time each; the 64 MiB ones for a number of
# requests, since one takes 40 to 250 ms, and four at once up to 800 ms.
small='^Benchmark(GET|GETWildcard|APSQuery|POST1KiB|Body1MiB|GETParallel|Retrieve|RetrieveParallel)$'
large='^BenchmarkBody64MiB$'
uploads='^BenchmarkUpload4x64MiB$'
step "go test -c"
go test -c -o "$tmp/bench.test" .
{
	echo "go test -c -o bench.test . && for r in \$(seq 0 $((count - 1))); do"
	echo "  KIVULI_BENCH_ROUND=\$r ./bench.test -test.run '^\$' -test.bench '$small' -test.benchmem -test.count 1 -test.benchtime $benchtime"
	echo "  KIVULI_BENCH_ROUND=\$r ./bench.test -test.run '^\$' -test.bench '$large' -test.benchmem -test.count 1 -test.benchtime $benchtime64"
	echo "  KIVULI_BENCH_ROUND=\$r ./bench.test -test.run '^\$' -test.bench '$uploads' -test.benchmem -test.count 1 -test.benchtime $benchtimeUploads"
	echo "done  # = go test -run '^\$' -bench . -benchmem -count $count, interleaved"
} >>"$out/commands.txt"
for ((r = 0; r < count; r++)); do
	for set in small large uploads; do
		case $set in
		small) pattern=$small bt=$benchtime ;;
		large) pattern=$large bt=$benchtime64 ;;
		uploads) pattern=$uploads bt=$benchtimeUploads ;;
		esac
		step "round $((r + 1))/$count: -bench '$pattern' -benchtime $bt"
		KIVULI_BENCH_ROUND=$r "$tmp/bench.test" -test.run '^$' -test.bench "$pattern" -test.benchmem \
			-test.count 1 -test.benchtime "$bt" | tee -a "$raw" >&2
	done
done

step "benchstat"
order='/impl@(floor kivuli opensearch smithy prometheus raw-sha256)'
"$benchstat" -col "$order" "$raw" >"$out/benchstat.txt"
"$benchstat" -format csv -col "$order" "$raw" >"$out/vs-floor.csv" 2>/dev/null
"$benchstat" -format csv -col '/impl@(kivuli opensearch smithy prometheus)' "$raw" >"$out/vs-kivuli.csv" 2>/dev/null
echo "benchstat -col '$order' results/bench.txt" >>"$out/commands.txt"
cat "$out/benchstat.txt" >&2

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
header_cpu=$(grep -m1 '^cpu:' "$raw" | cut -d: -f2- | sed 's/^ *//;s/ *$//' || true)
cpus="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') CPUs"
if [ -n "$header_cpu" ] && [ "$header_cpu" != "$cpu" ]; then
	cpu="$cpu ($header_cpu)"
fi
elapsed=$((SECONDS - start))

step "report"
go run ./internal/report \
	-readme README.md \
	-vs-floor "$out/vs-floor.csv" \
	-vs-kivuli "$out/vs-kivuli.csv" \
	-text "$out/benchstat.txt" \
	-storm "$out/storm.txt" \
	-commands "$out/commands.txt" \
	-date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
	-go-version "$(go version)" \
	-cpu "$cpu, $cpus" \
	-elapsed "$((elapsed / 60))m$((elapsed % 60))s"

# Only this script's files are replaced: results/ also keeps run-proxy.sh's proxy.md.
mkdir -p results
for f in "$out"/*; do
	rm -rf "results/${f##*/}"
	mv "$f" results/
done
echo "run.sh: done in $((SECONDS - start))s; README.md and results/ updated" >&2
if [ "$storm_ok" != 1 ]; then
	echo "run.sh: TestStorm failed" >&2
	exit 1
fi
