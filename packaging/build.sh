#!/usr/bin/env bash
# Build the roomcast .debs (packages roomcast and roomcast-broker) for amd64,
# arm64 and armhf into dist/. `make package` runs this; it also works alone.
#
# Environment (all optional):
#   PKG_VERSION    Debian upstream version (default: from git, see pkg_version)
#   PKG_REVISION   Debian revision (default 1)
#   ARCHES         Debian architectures (default "amd64 arm64 armhf")
#   DIST           output directory (default dist, relative to the repository)
#   GO             go command (default go)
#   COMMIT         commit stamped into the binaries (default: git HEAD, short)
#   PKG_MAINTAINER Maintainer field
#   SOURCE_DATE_EPOCH  timestamps in the packages (default: HEAD's commit time)
#
# Every binary is built with cgo (CGO_ENABLED=1) by the Debian cross gcc of
# its architecture, -trimpath, -buildmode=pie, stripped (-s -w), with the
# Makefile's buildinfo variables (Version = the Debian upstream version, so
# `roomcastd --version` names the installed package version; Commit).
# Writes dist/<pkg>_<version>-<rev>_<arch>.deb and dist/packages.env (what
# was built, read by packaging/test.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=packaging/lib.sh
. packaging/lib.sh

GO=${GO:-go}
ARCHES=${ARCHES:-amd64 arm64 armhf}
DIST=$(realpath -m "${DIST:-dist}")
PKG_REVISION=${PKG_REVISION:-1}
PKG_MAINTAINER=${PKG_MAINTAINER:-roomcast maintainers <maintainers@roomcast.invalid>}
export GIT_OPTIONAL_LOCKS=0 # read-only git: never refresh the index

ensure_debs "${BUILD_DEBS[@]}"

HOST_ARCH=$(dpkg --print-architecture)
[ "$HOST_ARCH" = amd64 ] || die "build host must be amd64 (man pages run the native binaries), not $HOST_ARCH"

# pkg_version prints the Debian upstream version:
#   tag v1.2.3 on HEAD          -> 1.2.3
#   tag v1.2.0-rc1 on HEAD      -> 1.2.0~rc1   (sorts before 1.2.0)
#   4 commits after v1.2.3      -> 1.2.3+git20261123.4.1d8d30d
#   no v* tag yet               -> 0.0.0~git20261123.1d8d30d
# with "+dirty" appended when tracked files differ from HEAD.
pkg_version() {
	local date sha desc v
	date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d HEAD)
	sha=$(git rev-parse --short=7 HEAD)
	if desc=$(git describe --tags --match 'v[0-9]*' HEAD 2>/dev/null); then
		if [[ $desc =~ ^v([0-9][0-9A-Za-z.]*)(-([A-Za-z][0-9A-Za-z.]*))?(-([0-9]+)-g([0-9a-f]+))?$ ]]; then
			v=${BASH_REMATCH[1]}
			[ -z "${BASH_REMATCH[3]}" ] || v+="~${BASH_REMATCH[3]}"
			[ -z "${BASH_REMATCH[5]}" ] || v+="+git$date.${BASH_REMATCH[5]}.${BASH_REMATCH[6]}"
		else
			die "cannot turn tag description '$desc' into a Debian version; set PKG_VERSION"
		fi
	else
		v="0.0.0~git$date.$sha"
	fi
	git diff --quiet HEAD -- 2>/dev/null || v+="+dirty"
	echo "$v"
}

PKG_VERSION=${PKG_VERSION:-$(pkg_version)}
[[ $PKG_VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "PKG_VERSION '$PKG_VERSION' is not a valid Debian upstream version"
[[ $PKG_REVISION =~ ^[A-Za-z0-9.+~]+$ ]] || die "PKG_REVISION '$PKG_REVISION' is not a valid Debian revision"
DEB_VERSION="$PKG_VERSION-$PKG_REVISION"
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
export SOURCE_DATE_EPOCH
LDFLAGS="-s -w -X github.com/roomcast/roomcast/buildinfo.Version=$PKG_VERSION -X github.com/roomcast/roomcast/buildinfo.Commit=$COMMIT"
# Debian's hardening for the C parts (cgo; miniaudio once malgo is linked):
# full RELRO + immediate binding (external linking, as any non-std cgo
# package forces anyway), fortified libc calls, stack protector.
LDFLAGS+=" -linkmode=external -extldflags=-Wl,-z,relro,-z,now"
export CGO_CFLAGS=${CGO_CFLAGS:--O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong}

STAGE="$DIST/.stage"
rm -rf "$STAGE"
mkdir -p "$DIST" "$STAGE"
rm -f "$DIST"/roomcast_*.deb "$DIST"/roomcast-broker_*.deb "$DIST/packages.env"
note "version $DEB_VERSION (commit $COMMIT), arches: $ARCHES"

# build_arch ARCH: the three commands for ARCH into $STAGE/ARCH/bin.
build_arch() {
	local arch=$1 goarch goarm cc start
	goarch=$(arch_goarch "$arch")
	goarm=$(arch_goarm "$arch")
	cc=$(arch_cc "$arch")
	command -v "$cc" >/dev/null || die "$cc not found (Debian package $(dpkg -S "/usr/bin/$cc" 2>/dev/null | cut -d: -f1 || echo "gcc-*-cross"))"
	mkdir -p "$STAGE/$arch/bin"
	start=$SECONDS
	env CGO_ENABLED=1 GOOS=linux GOARCH="$goarch" ${goarm:+GOARM=$goarm} CC="$cc" \
		"$GO" build -trimpath -buildmode=pie -ldflags "$LDFLAGS" -o "$STAGE/$arch/bin/" ./cmd/...
	note "built $arch binaries in $((SECONDS - start))s"
}

# man_pages OUTDIR: roomcastd.1.gz, roomcast.1.gz, roomcast-broker.1.gz from
# the native binaries' --help (help2man, plus packaging/man/*.h2m).
man_pages() {
	local out=$1 bin="$STAGE/amd64/bin" cmd wrap="$STAGE/h2m"
	mkdir -p "$out" "$wrap"
	for cmd in roomcastd roomcast-broker roomcast; do
		# help2man names the page after the program it runs: a wrapper with the
		# command's name. It drops the usage block (the include's SYNOPSIS
		# replaces it), names the options heading the way help2man expects,
		# writes options as --name (Go's flag package takes - and --; the docs
		# use --) with their help indented the way help2man wants it, puts each
		# line of the CLI's command list in its own paragraph, and
		# runs with HOME=~ so defaults read "~/.local/...", not "/root/...".
		cat >"$wrap/$cmd" <<-EOF
			#!/bin/sh
			env -i PATH=/usr/bin:/bin HOME='~' "$bin/$cmd" "\$@" 2>&1 |
				awk 'skip && /^\$/ { skip = 0; next } skip { next }
				     /^(global )?options \(.*\):\$/ { print "Options:"; next }
				     /^commands:\$/ { print "Commands:"; cmds = 1; next }
				     cmds && /^\$/ { cmds = 0 }
				     cmds { print; print ""; next }
				     /^  -[a-z]/ { sub(/^  -/, "  --") }
				     /^    \t/ { sub(/^    \t/, "                        ") }
				     { print }' skip=1
		EOF
		chmod +x "$wrap/$cmd"
		help2man --no-info --section=1 --version-string="$PKG_VERSION" \
			--include="packaging/man/$cmd.h2m" --output="$out/$cmd.1" "$wrap/$cmd" \
			|| die "help2man $cmd failed"
		grep -q '^\.SH OPTIONS' "$out/$cmd.1" || die "man page $cmd.1 has no OPTIONS section"
		gzip -9n -f "$out/$cmd.1"
	done
}

# third_party_licenses OUT BINARY...: copyright notices and license texts of
# the Go toolchain and every module linked into BINARY..., gzipped. Fails if
# a module's source or license file cannot be found.
third_party_licenses() {
	local out=$1 modcache goroot mv mod ver dir f found
	shift
	modcache=$("$GO" env GOMODCACHE)
	goroot=$("$GO" env GOROOT)
	{
		echo "Third-party software included in these programs"
		echo "==============================================="
		echo
		echo "The roomcast programs are statically linked Go binaries. They include"
		echo "the Go standard library and runtime and the Go modules listed below,"
		echo "each under its own license, reproduced here in full."
		echo
		echo "-------------------------------------------------------------------------"
		echo "Go standard library and runtime ($("$GO" env GOVERSION))"
		echo "-------------------------------------------------------------------------"
		cat "$goroot/LICENSE"
		[ ! -f "$goroot/PATENTS" ] || { echo; cat "$goroot/PATENTS"; }
		for mv in $("$GO" version -m "$@" | awk '$1 == "dep" { print $2 "@" $3 }' | sort -u); do
			mod=${mv%@*}
			ver=${mv#*@}
			# module cache paths escape upper case letters as "!" + lower case
			dir="$modcache/$(printf '%s' "$mod" | sed -E 's/([A-Z])/!\L\1/g')@$ver"
			[ -d "$dir" ] || die "module source of $mv not in $modcache (run: $GO mod download)"
			echo
			echo "-------------------------------------------------------------------------"
			echo "$mod $ver"
			echo "-------------------------------------------------------------------------"
			found=0
			for f in "$dir"/*; do
				case ${f##*/} in
				LICENSE* | LICENCE* | COPYING* | NOTICE* | PATENTS* | License* | license* | UNLICENSE*)
					[ -f "$f" ] || continue
					echo "--- ${f##*/}"
					cat "$f"
					found=1
					;;
				esac
			done
			[ "$found" = 1 ] || die "no license file found for $mv in $dir"
		done
	} | gzip -9n >"$out"
}

# debian_changelog PKG OUT: a one-entry changelog.Debian.gz for this build.
debian_changelog() {
	{
		printf '%s (%s) unstable; urgency=medium\n\n' "$1" "$DEB_VERSION"
		printf '  * Package built from roomcast commit %s.\n\n' "$COMMIT"
		printf ' -- %s  %s\n' "$PKG_MAINTAINER" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
	} | gzip -9n >"$2"
}

# libc_dep BINARY...: "libc6 (>= X)" for the newest GLIBC_X symbol version
# the binaries need (dpkg-shlibdeps cannot run for foreign arches here).
libc_dep() {
	local v
	v=$(readelf --version-info --wide "$@" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1)
	[ -n "$v" ] || die "no GLIBC symbol versions in $* (not dynamically linked against glibc?)"
	echo "libc6 (>= $v)"
}

# package ARCH PKG BINARY...: stage generated files and run nfpm.
package() {
	local arch=$1 pkg=$2 dir="$STAGE/$1/$2" deb b
	shift 2
	mkdir -p "$dir/bin" "$dir/man" "$dir/doc" "$dir/dbus"
	for b in "$@"; do
		cp "$STAGE/$arch/bin/$b" "$dir/bin/"
		cp "$STAGE/man/$b.1.gz" "$dir/man/"
	done
	if [ "$pkg" = roomcast ]; then
		if compgen -G 'packaging/dbus/*.conf' >/dev/null; then
			cp packaging/dbus/*.conf "$dir/dbus/"
		else
			# TODO(dbus): remove this branch once packaging/dbus/ is committed.
			note "WARNING: packaging/dbus/*.conf not found: roomcast is built WITHOUT its D-Bus policy"
		fi
	fi
	debian_changelog "$pkg" "$dir/doc/changelog.Debian.gz"
	third_party_licenses "$dir/doc/third-party-licenses.gz" "${@/#/$dir/bin/}"
	deb="$DIST/${pkg}_${DEB_VERSION}_${arch}.deb"
	RC_ARCH=$arch RC_VERSION=$PKG_VERSION RC_RELEASE=$PKG_REVISION RC_STAGE="$dir" \
		RC_LIBC=$(libc_dep "${@/#/$dir/bin/}") RC_MAINTAINER=$PKG_MAINTAINER \
		"$GO" tool nfpm package --config "packaging/$pkg.nfpm.yaml" --packager deb --target "$deb" >/dev/null
	[ -s "$deb" ] || die "nfpm did not write $deb"
	note "wrote $deb"
}

t0=$SECONDS
built=" "
for arch in $ARCHES; do
	build_arch "$arch"
	built+="$arch "
done
[[ $built == *" $HOST_ARCH "* ]] || build_arch "$HOST_ARCH" # for the man pages
man_pages "$STAGE/man"
# one packaging job per arch in parallel (gzip in nfpm is the slow part)
pids=()
debs=()
for arch in $ARCHES; do
	(
		package "$arch" roomcast roomcastd roomcast
		package "$arch" roomcast-broker roomcast-broker
	) &
	pids+=($!)
	debs+=("$DIST/roomcast_${DEB_VERSION}_$arch.deb" "$DIST/roomcast-broker_${DEB_VERSION}_$arch.deb")
done
for pid in "${pids[@]}"; do
	wait "$pid" || die "packaging failed (see above)"
done

{
	printf 'PKG_VERSION=%q\nDEB_VERSION=%q\nCOMMIT=%q\nARCHES=%q\n' "$PKG_VERSION" "$DEB_VERSION" "$COMMIT" "$ARCHES"
	printf 'DEBS=(%s)\n' "${debs[*]@Q}"
} >"$DIST/packages.env"
note "done in $((SECONDS - t0))s: ${debs[*]}"
