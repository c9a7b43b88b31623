#!/usr/bin/env bash
# The kivuli command's release: static binaries (CGO_ENABLED=0) for every
# target with the version, the commit and the commit's time stamped in,
# their SHA256SUMS and, with --image, the container images of the proxy.
# CI runs it with --check. See RELEASING.md.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: cmd/kivuli/release.sh [-o DIR] [--image] [--check]

Builds kivuli-OS-ARCH[.exe] for linux/amd64, linux/arm64, darwin/amd64,
darwin/arm64 and windows/amd64 into DIR (default: dist/ at the
repository's root), and DIR/SHA256SUMS of everything it wrote.

  -o DIR    write to DIR
  --image   also build the images kivuli-image-linux-amd64.tar and
            kivuli-image-linux-arm64.tar (docker archives, for docker load
            and podman load) with buildah, FROM scratch
  --check   check what was built: every target there and in SHA256SUMS,
            the linux binaries static, and this machine's binary runs
            (--version as stamped, an offline kivuli imds -- kivuli curl);
            with --image, each image's config and the binary in its layer,
            and, as root, kivuli proxy started from the image's files as
            its user

Environment:
  VERSION   the version to stamp (default: from the tag cmd/kivuli/vX.Y.Z
            that git describe finds, else "(devel)")
  TARGETS   the targets to build, e.g. "linux/amd64" (default: all five)
  CA_CERTS  the CA bundle the image gets
            (default: /etc/ssl/certs/ca-certificates.crt)
  JOBS      how many targets build at once (default: the number of CPUs)
EOF
}

out='' image=false check=false
while [ $# -gt 0 ]; do
	case $1 in
	-o) [ $# -ge 2 ] || { usage >&2; exit 2; }; out=$2; shift 2 ;;
	--image) image=true; shift ;;
	--check) check=true; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "release.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd) # cmd/kivuli
root=$(cd "$here/../.." && pwd)
out=${out:-$root/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
targets=${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}
ca_certs=${CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
jobs=${JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}

die() { echo "release.sh: $*" >&2; exit 1; }

# What is stamped: the version of the tag, the commit (+dirty when the
# tree differs from it) and the commit's time, not the build's, so that
# building a commit again gives the same bytes.
revision=$(git -C "$root" rev-parse HEAD)
commit=${revision:0:12}
[ -z "$(git -C "$root" status --porcelain)" ] || commit+=+dirty
date=$(TZ=UTC0 git -C "$root" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)
epoch=$(git -C "$root" log -1 --format=%ct)
if [ -z "${VERSION:-}" ]; then
	VERSION=$(git -C "$root" describe --tags --match 'cmd/kivuli/v*' 2>/dev/null) || VERSION="(devel)"
	VERSION=${VERSION#cmd/kivuli/}
fi
goversion=$(go -C "$here" env GOVERSION)

binary() { # OS ARCH: the file name of a target's binary
	if [ "$1" = windows ]; then echo "kivuli-$1-$2.exe"; else echo "kivuli-$1-$2"; fi
}

sha256() { if command -v sha256sum >/dev/null; then sha256sum "$@"; else shasum -a 256 "$@"; fi; }

build_one() { # OS/ARCH
	# -trimpath and the commit's time make the build reproducible; -s -w
	# drop the symbol table and DWARF (stack traces keep their lines).
	# The stamped variables are the root command's (internal/root/version.go).
	local pkg=github.com/kivuli-go/kivuli/cmd/kivuli/internal/root
	CGO_ENABLED=0 GOOS=${1%/*} GOARCH=${1#*/} go -C "$here" build -trimpath \
		-ldflags "-s -w -X $pkg.version=$VERSION -X $pkg.commit=$commit -X $pkg.date=$date" \
		-o "$out/$(binary "${1%/*}" "${1#*/}")" . || { echo "release.sh: build $1 failed" >&2; return 1; }
	echo "built $1"
}

# build builds the targets $jobs at a time: one go build keeps about one
# core busy while it links and compiles the few large packages last.
build() {
	rm -f "$out"/kivuli-* "$out/SHA256SUMS"
	local t pids=() failed=0 pid
	for t in $targets; do
		build_one "$t" &
		pids+=($!)
		if [ ${#pids[@]} -ge "$jobs" ]; then
			for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
			pids=()
		fi
	done
	for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid" || failed=1; done
	[ $failed = 0 ] || die "a build failed"
}

# The images are built in a storage of their own (vfs: no overlay mounts
# needed), removed at exit: what is kept is the archives in $out.
images() {
	command -v buildah >/dev/null || die "--image needs buildah (Debian: apt-get install buildah)"
	[ -f "$ca_certs" ] || die "no CA bundle at $ca_certs: set CA_CERTS"
	local bah=(buildah --storage-driver vfs --root "$work/build/storage" --runroot "$work/build/run")
	local ctx=$work/build/ctx tag arch
	mkdir -p "$ctx/fs/tmp"
	chmod 1777 "$ctx/fs/tmp"
	cp "$ca_certs" "$ctx/ca-certificates.crt"
	tag=${VERSION//[^A-Za-z0-9_.-]/} # a tag has no parentheses: (devel) is devel
	rm -f "$out"/kivuli-image-*
	for arch in amd64 arm64; do
		[ -f "$out/kivuli-linux-$arch" ] || continue
		echo "image linux/$arch"
		cp "$out/kivuli-linux-$arch" "$ctx/"
		"${bah[@]}" bud --quiet --platform "linux/$arch" --timestamp "$epoch" \
			--label org.opencontainers.image.title=kivuli \
			--label org.opencontainers.image.version="$VERSION" \
			--label org.opencontainers.image.revision="$revision" \
			--label org.opencontainers.image.source=https://github.com/kivuli-go/kivuli \
			--label org.opencontainers.image.licenses=Apache-2.0 \
			-f "$here/Containerfile" -t "kivuli-$arch" "$ctx" >/dev/null
		"${bah[@]}" push --quiet "kivuli-$arch" "docker-archive:$out/kivuli-image-linux-$arch.tar:kivuli:$tag"
	done
}

sums() { (cd "$out" && sha256 kivuli-* >SHA256SUMS); }

fail() { echo "release.sh --check: $*" >&2; exit 1; }

# static fails unless the ELF file $1 has no interpreter (PT_INTERP) and
# no shared libraries: the kernel runs it as it is, on any distribution.
static() {
	local h d
	# Outputs are kept, then searched: grep -q exits at the first match, and
	# the writer's SIGPIPE would fail the pipe (pipefail).
	if command -v readelf >/dev/null; then
		h=$(readelf -lW "$1") || fail "readelf cannot read $1"
		d=$(readelf -dW "$1") || fail "readelf cannot read $1"
		! grep -q 'INTERP' <<<"$h" || fail "$1 asks for an interpreter: $(grep -A1 INTERP <<<"$h")"
		! grep -q 'NEEDED' <<<"$d" || fail "$1 needs shared libraries: $(grep NEEDED <<<"$d")"
	elif command -v file >/dev/null; then
		h=$(file -b "$1")
		grep -q 'statically linked' <<<"$h" || fail "$1 is not static: $h"
	else
		fail "neither readelf nor file is installed, to tell whether $1 is static"
	fi
}

check_binaries() {
	local t host bin got want
	for t in $targets; do
		[ -s "$out/$(binary "${t%/*}" "${t#*/}")" ] || fail "no binary for $t"
		grep -q " $(binary "${t%/*}" "${t#*/}")\$" "$out/SHA256SUMS" || fail "$t is not in SHA256SUMS"
		if [ "${t%/*}" = linux ]; then static "$out/$(binary "${t%/*}" "${t#*/}")"; fi
	done
	(cd "$out" && sha256 -c SHA256SUMS >/dev/null) || fail "SHA256SUMS does not match"
	host=$(go env GOHOSTOS)/$(go env GOHOSTARCH)
	case " $targets " in *" $host "*) ;; *) echo "check: no binary for this machine ($host) to run"; return ;; esac
	bin=$out/$(binary "${host%/*}" "${host#*/}")
	got=$("$bin" --version)
	want="kivuli $VERSION (commit $commit, $date, $goversion $host)"
	[ "$got" = "$want" ] || fail "$bin --version: got \"$got\", want \"$want\""
	# The output is kept, then searched: see .ci/run on grep -q and SIGPIPE.
	got=$("$bin" imds --listen 127.0.0.1:0 -- "$bin" curl --dry-run -v \
		'https://sts.eu-west-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15' 2>&1) ||
		fail "kivuli imds -- kivuli curl --dry-run failed: $got"
	grep -q 'canonical request' <<<"$got" || fail "kivuli curl --dry-run printed no canonical request: $got"
	echo "check: every target built and in SHA256SUMS, the linux binaries static; $(basename "$bin") runs: $want"
}

# check_images reads each image as a runtime would: loaded from its
# archive into a storage of its own, its config, and its one layer
# unpacked: exactly the binary, the CA bundle and /tmp. This machine's
# binary is run from there: as root, kivuli proxy is started in the
# image's files (chroot) as the image's user, to /readyz.
check_images() {
	local bah=(buildah --storage-driver vfs --root "$work/check/storage" --runroot "$work/check/run")
	local arch archive cfg want layer fs files
	for arch in amd64 arm64; do
		archive=$out/kivuli-image-linux-$arch.tar
		[ -f "$out/kivuli-linux-$arch" ] || continue
		[ -s "$archive" ] || fail "no image for linux/$arch"
		"${bah[@]}" pull --quiet --platform "linux/$arch" "docker-archive:$archive" >/dev/null
		# shellcheck disable=SC2016 # a Go template, not the shell's
		cfg=$("${bah[@]}" inspect --type image --format '{{.OCIv1.OS}}/{{.OCIv1.Architecture}} user={{.OCIv1.Config.User}} entrypoint={{printf "%q" .OCIv1.Config.Entrypoint}} cmd={{printf "%q" .OCIv1.Config.Cmd}} ports={{range $p, $_ := .OCIv1.Config.ExposedPorts}}{{$p}} {{end}}' "kivuli:${VERSION//[^A-Za-z0-9_.-]/}")
		want="linux/$arch user=65532:65532 entrypoint=[\"/kivuli\"] cmd=[\"proxy\" \"--help\"] ports=8080/tcp "
		[ "$cfg" = "$want" ] || fail "image linux/$arch: config $cfg, want $want"
		fs=$work/check/fs-$arch
		mkdir -p "$fs"
		layer=$(tar -tf "$archive" | grep -E '^[0-9a-f]{64}\.tar$') || fail "image linux/$arch: no layer in $archive"
		[ "$(wc -l <<<"$layer")" = 1 ] || fail "image linux/$arch: more than one layer: $layer"
		tar -xOf "$archive" "$layer" | tar -x -C "$fs"
		files=$(cd "$fs" && find . -mindepth 1 \( -type f -o -type d -empty \) -printf '%p %m %u:%g\n' | sort | tr '\n' ';')
		want="./etc/ssl/certs/ca-certificates.crt 644 root:root;./kivuli 755 root:root;./tmp 1777 root:root;"
		[ "$files" = "$want" ] || fail "image linux/$arch: files $files, want $want"
		cmp -s "$fs/kivuli" "$out/kivuli-linux-$arch" || fail "image linux/$arch: /kivuli is not $out/kivuli-linux-$arch"
		cmp -s "$fs/etc/ssl/certs/ca-certificates.crt" "$ca_certs" || fail "image linux/$arch: the CA bundle is not $ca_certs"
		echo "check: image linux/$arch: $cfg; files $files"
		if [ "$(go env GOHOSTOS)/$(go env GOHOSTARCH)" = "linux/$arch" ]; then
			got=$("$fs/kivuli" --version)
			[ "$got" = "kivuli $VERSION (commit $commit, $date, $goversion linux/$arch)" ] || fail "the image's kivuli --version: $got"
			if [ "$(id -u)" = 0 ]; then proxy_in "$fs"; else echo "check: not root, so kivuli proxy is not started in the image's files"; fi
		fi
	done
}

# proxy_in starts kivuli proxy in the image's files $1, as the image's
# user, with credentials from the environment (the SDK's chain, as on EKS
# with IRSA, where there is no HOME nor /etc/passwd), and asks its admin
# listener for /readyz. Nothing leaves loopback: no request goes upstream.
proxy_in() {
	local log=$work/check/proxy.log pid admin='' ready tries=100
	env -i AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \
		"$(command -v chroot)" --userspec=65532:65532 "$1" /kivuli proxy --source chain \
		--upstream https://sts.eu-west-2.amazonaws.com --listen 127.0.0.1:0 --admin 127.0.0.1:0 >"$log" 2>&1 &
	pid=$!
	# Its log names the admin address once it listens; 10 s at most.
	while [ -z "$admin" ] && [ $tries -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.1
		tries=$((tries - 1))
		admin=$(sed -n 's|.*msg="kivuli proxy: admin" admin=http://\([0-9.:]*\).*|\1|p' "$log")
	done
	[ -n "$admin" ] || { kill "$pid" 2>/dev/null || true; fail "kivuli proxy did not start in the image's files: $(cat "$log")"; }
	exec 3<>"/dev/tcp/${admin%:*}/${admin##*:}"
	printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n' "$admin" >&3
	ready=$(head -1 <&3)
	exec 3<&-
	kill -TERM "$pid"
	wait "$pid" || fail "kivuli proxy in the image's files: exit $? on SIGTERM: $(cat "$log")"
	[[ $ready == "HTTP/1.0 200"* ]] || fail "kivuli proxy in the image's files: /readyz answered $ready: $(cat "$log")"
	echo "check: kivuli proxy started in the image's files as 65532:65532, /readyz: ${ready%$'\r'}, stopped on SIGTERM"
}

work=$(mktemp -d)
cleanup() { rm -rf "$work" 2>/dev/null || buildah unshare rm -rf "$work"; }
trap cleanup EXIT

build
if $image; then images; fi
sums
if $check; then
	check_binaries
	if $image; then check_images; fi
fi
echo "release.sh: kivuli $VERSION (commit $commit, $date) in $out:"
(cd "$out" && ls -l kivuli-* SHA256SUMS)
