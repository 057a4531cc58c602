# shellcheck shell=bash
# Helpers shared by packaging/build.sh and packaging/test.sh (sourced, bash).

# die MESSAGE...: print to stderr and exit non-zero.
die() {
	echo "packaging: error: $*" >&2
	exit 1
}

# note MESSAGE...: progress line on stderr.
note() {
	echo "packaging: $*" >&2
}

# ensure_debs PKG...: install the Debian packages that are not installed yet
# (apt-get; sudo when not root). Never skips: if installing fails, we fail.
ensure_debs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	note "installing missing Debian packages: ${missing[*]}"
	local sudo=()
	[ "$(id -u)" = 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Debian packages the build needs (keep in sync with PACKAGE_DEB_PACKAGES in
# the Makefile).
# shellcheck disable=SC2034 # used by build.sh and test.sh
BUILD_DEBS=(gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross
	gcc-arm-linux-gnueabihf libc6-dev-armhf-cross binutils help2man git)
# ...and what package-test needs on top.
# shellcheck disable=SC2034
TEST_DEBS=(lintian qemu-user systemd adduser libopus0)

# Per Debian architecture: GOARCH, GOARM, C cross compiler, qemu runner and
# the sysroot qemu needs (empty for the native amd64 build).
arch_goarch() { case $1 in amd64) echo amd64 ;; arm64) echo arm64 ;; armhf) echo arm ;; *) die "unknown arch $1" ;; esac; }
arch_goarm() { case $1 in armhf) echo 7 ;; *) echo "" ;; esac; }
arch_cc() { case $1 in amd64) echo x86_64-linux-gnu-gcc ;; arm64) echo aarch64-linux-gnu-gcc ;; armhf) echo arm-linux-gnueabihf-gcc ;; *) die "unknown arch $1" ;; esac; }
arch_qemu() { case $1 in arm64) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;; armhf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;; *) echo "" ;; esac; }
