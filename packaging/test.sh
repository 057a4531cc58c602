#!/usr/bin/env bash
# Package test (`make package-test`): builds the .debs, lints them, installs
# the amd64 ones on THIS machine (dpkg -i: run as root, in CI or a throwaway
# machine), checks the installation, removes and purges them and checks what
# is left, and runs the arm64/armhf binaries under qemu-user.
#
# Fails (non-zero, with the reason) on any problem. Missing tools (lintian,
# qemu-user, cross gcc, help2man, ...) are installed with apt-get, never
# skipped. The packages are purged at the end whatever happens (trap), and
# the "roomcast" user is deleted again if this test created it.
#
# Environment: LINTIAN_FAIL_ON (default "error,warning"), SKIP_BUILD=1 to
# test the .debs already in dist/ (dist/packages.env), plus build.sh's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=packaging/lib.sh
. packaging/lib.sh

DIST=$(realpath -m "${DIST:-dist}")
export DIST
LINTIAN_FAIL_ON=${LINTIAN_FAIL_ON:-error,warning}
T0=$SECONDS
[ "$(id -u)" = 0 ] || die "package-test installs packages with dpkg -i: run it as root (CI does)"

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { echo "ok:   $*"; }
check() { # check DESCRIPTION COMMAND...: run COMMAND, pass/fail by its status
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
phase() { echo "== $* ($((SECONDS - T0))s)"; }

ensure_debs "${BUILD_DEBS[@]}" "${TEST_DEBS[@]}"
for tool in lintian qemu-aarch64 qemu-arm systemd-analyze dpkg-deb readelf setpriv; do
	command -v "$tool" >/dev/null || die "$tool not found after installing ${TEST_DEBS[*]}"
done

# ---------------------------------------------------------------- build
if [ "${SKIP_BUILD:-}" = 1 ]; then
	phase "using the .debs in $DIST (SKIP_BUILD=1)"
else
	phase "build"
	bash packaging/build.sh
fi
[ -f "$DIST/packages.env" ] || die "$DIST/packages.env missing: build first"
# shellcheck source=/dev/null
. "$DIST/packages.env"
for a in amd64 arm64 armhf; do
	for p in roomcast roomcast-broker; do
		deb="$DIST/${p}_${DEB_VERSION}_$a.deb"
		[ -f "$deb" ] || die "$deb was not built"
	done
done
deb() { echo "$DIST/${1}_${DEB_VERSION}_$2.deb"; }

# ---------------------------------------------------------------- lintian
phase "lintian (--fail-on $LINTIAN_FAIL_ON)"
for d in "${DEBS[@]}"; do
	for f in Package Version Architecture; do
		v=$(dpkg-deb -f "$d" "$f")
		case $f in
		Version) [ "$v" = "$DEB_VERSION" ] || fail "$d: Version $v, want $DEB_VERSION" ;;
		Architecture) [[ $d == *"_$v.deb" ]] || fail "$d: Architecture $v does not match the file name" ;;
		esac
	done
done
lintian_out=$(mktemp)
if lintian --display-info --fail-on "$LINTIAN_FAIL_ON" "${DEBS[@]}" >"$lintian_out" 2>&1; then
	pass "lintian: no tags at or above: $LINTIAN_FAIL_ON"
else
	fail "lintian"
fi
grep -E '^[EWIPX]: ' "$lintian_out" || true
grep -vE '^[EWIPXNO]: |^$|running with root privileges' "$lintian_out" >&2 || true
rm -f "$lintian_out"

# ---------------------------------------------------------------- install (amd64)
user_existed=no
getent passwd roomcast >/dev/null && user_existed=yes
daemon_pid=""
tmp=$(mktemp -d)
cleanup() {
	local rc=$?
	[ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null || true
	dpkg --purge roomcast roomcast-broker >/dev/null 2>&1 || true
	if [ "$user_existed" = no ] && getent passwd roomcast >/dev/null; then
		userdel roomcast || { echo "package-test: cleanup: could not delete user roomcast" >&2; rc=1; }
	fi
	if [ "$user_existed" = no ] && getent group roomcast >/dev/null; then
		groupdel roomcast || { echo "package-test: cleanup: could not delete group roomcast" >&2; rc=1; }
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in roomcast roomcast-broker; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv 'not-installed'; then
		note "purging $p left over from an earlier run"
		dpkg --purge "$p" >/dev/null
	fi
done

phase "dpkg -i (amd64)"
# nothing may be started by the test: no running systemd here, and even with
# one, policy-rc.d would be the way to forbid it. Be explicit about it.
[ ! -d /run/systemd/system ] || note "WARNING: systemd runs here; postinst will start the services"
dpkg -i "$(deb roomcast amd64)" "$(deb roomcast-broker amd64)"

for p in roomcast roomcast-broker; do
	check "$p is installed" test "$(dpkg-query -W -f='${Status}' "$p")" = "install ok installed"
done

files_roomcast=(/usr/bin/roomcastd /usr/bin/roomcast
	/lib/systemd/system/roomcastd.service /usr/lib/systemd/user/roomcastd.service
	/usr/lib/sysusers.d/roomcast.conf /etc/roomcast/roomcastd.toml
	/usr/share/man/man1/roomcastd.1.gz /usr/share/man/man1/roomcast.1.gz
	/usr/share/doc/roomcast/copyright /usr/share/doc/roomcast/changelog.Debian.gz
	/usr/share/doc/roomcast/third-party-licenses.gz /usr/share/lintian/overrides/roomcast)
files_broker=(/usr/bin/roomcast-broker /lib/systemd/system/roomcast-broker.service
	/usr/share/man/man1/roomcast-broker.1.gz /usr/share/doc/roomcast-broker/copyright
	/usr/share/doc/roomcast-broker/changelog.Debian.gz
	/usr/share/doc/roomcast-broker/third-party-licenses.gz /usr/share/lintian/overrides/roomcast-broker)
dbus_policy=()
for f in packaging/dbus/*.conf; do
	[ -f "$f" ] && dbus_policy+=("/usr/share/dbus-1/system.d/${f##*/}")
done
[ ${#dbus_policy[@]} -gt 0 ] || note "WARNING: no packaging/dbus/*.conf: D-Bus policy not checked"
files_roomcast+=("${dbus_policy[@]}")

listed=$(dpkg -L roomcast roomcast-broker)
for f in "${files_roomcast[@]}" "${files_broker[@]}"; do
	if [ -f "$f" ] && grep -qxF "$f" <<<"$listed"; then pass "installed and listed: $f"; else fail "missing or not in dpkg -L: $f"; fi
done
for f in /usr/bin/roomcastd /usr/bin/roomcast /usr/bin/roomcast-broker; do
	check "$f is mode 0755 root:root" test "$(stat -c '%a %U:%G' "$f")" = "755 root:root"
done
check "roomcastd.toml is a conffile" grep -q ' /etc/roomcast/roomcastd.toml ' <<<"$(dpkg-query -W -f='${Conffiles}\n' roomcast) "
check "roomcastd.toml is root:roomcast 0640" test "$(stat -c '%a %U:%G' /etc/roomcast/roomcastd.toml)" = "640 root:roomcast"

# the system user, as systemd/roomcast.sysusers.conf describes it
if pw=$(getent passwd roomcast); then
	IFS=: read -r _ _ uid _ _ home shell <<<"$pw"
	pass "user roomcast exists (uid $uid)"
	check "roomcast is a system user (uid < 1000)" test "$uid" -lt 1000
	check "roomcast's home is /var/lib/roomcast" test "$home" = /var/lib/roomcast
	check "roomcast has no login shell ($shell)" grep -qE '(nologin|false)$' <<<"$shell"
	check "group roomcast exists" getent group roomcast
	check "roomcast is in group audio" grep -qw audio <<<"$(id -nG roomcast)"
else
	fail "user roomcast does not exist"
fi

# units: system units enabled (symlinks by deb-systemd-helper), user unit not
for u in roomcastd roomcast-broker; do
	link=/etc/systemd/system/multi-user.target.wants/$u.service
	check "$u.service enabled" test "$(readlink "$link" 2>/dev/null)" = "/lib/systemd/system/$u.service"
done
check "user unit not enabled globally" test ! -e /etc/systemd/user/default.target.wants/roomcastd.service

# versions
want="$PKG_VERSION (commit $COMMIT, linux/amd64,"
for c in roomcastd roomcast-broker roomcast; do
	out=$("/usr/bin/$c" --version 2>&1) || fail "$c --version exited non-zero: $out"
	check "$c --version: $out" grep -qF "$c $want" <<<"$out"
done

# systemd-analyze verify: exits 0 even for unknown keys, so any line naming
# the unit is a failure too (as systemd/units_test.go does).
verify() { # verify UNITPATH [--user]
	local unit=$1 out rc=0
	shift
	out=$(XDG_RUNTIME_DIR=$tmp systemd-analyze "$@" verify --man=no --recursive-errors=no "$unit" 2>&1) || rc=$?
	if [ "$rc" = 0 ] && ! grep -qF "${unit##*/}" <<<"$out"; then
		pass "systemd-analyze $* verify $unit"
	else
		fail "systemd-analyze $* verify $unit (exit $rc):"
		echo "$out" >&2
	fi
}
verify /lib/systemd/system/roomcastd.service
verify /lib/systemd/system/roomcast-broker.service
verify /usr/lib/systemd/user/roomcastd.service --user

# The installed daemon runs as the installed user with the installed config:
# proves the conffile is valid TOML and readable by group roomcast, and the
# CLI talks to it. Others may not read the config.
check "user nobody cannot read roomcastd.toml" bash -c '! setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat /etc/roomcast/roomcastd.toml >/dev/null 2>&1'
chmod 0755 "$tmp" # let roomcast reach its state dir below
install -d -o roomcast -g roomcast -m 0700 "$tmp/state"
# Never on the machine's interfaces: no mDNS, loopback only; run the
# embedded broker instead of waiting for pairing.
setpriv --reuid=roomcast --regid=roomcast --init-groups -- /usr/bin/roomcastd --config /etc/roomcast/roomcastd.toml \
	--listen 127.0.0.1:0 --state-dir "$tmp/state" --mdns off --pair-listen 127.0.0.1:0 --mpris off --output null \
	--wait-for-pairing=false >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
url=""
for _ in $(seq 100); do
	url=$(sed -n 's/^roomcast broker: \(http:[^ ]*\).*/\1/p' "$tmp/daemon.log")
	[ -z "$url" ] || break
	kill -0 "$daemon_pid" 2>/dev/null || break
	sleep 0.1
done
if [ -n "$url" ]; then
	pass "roomcastd (user roomcast, /etc/roomcast/roomcastd.toml) serves $url"
	ok=no
	for _ in $(seq 50); do
		if /usr/bin/roomcast --broker "$url" --token-file "$tmp/state/owner.token" --json devices 2>/dev/null |
			grep -q "\"software\": \"roomcastd $PKG_VERSION\""; then
			ok=yes
			break
		fi
		sleep 0.1
	done
	check "roomcast devices lists the installed roomcastd" test "$ok" = yes
else
	fail "roomcastd as user roomcast did not start:"
	cat "$tmp/daemon.log" >&2
fi
kill "$daemon_pid" 2>/dev/null || true
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""

# ---------------------------------------------------------------- upgrade path
phase "reinstall over itself (postinst configure <old-version>), disabled unit stays disabled"
rm /etc/systemd/system/multi-user.target.wants/roomcast-broker.service # what "systemctl disable" does
echo '# local edit' >>/etc/roomcast/roomcastd.toml
dpkg -i "$(deb roomcast amd64)" "$(deb roomcast-broker amd64)" >/dev/null
check "roomcastd.service still enabled" test -L /etc/systemd/system/multi-user.target.wants/roomcastd.service
check "roomcast-broker.service still disabled" test ! -e /etc/systemd/system/multi-user.target.wants/roomcast-broker.service
check "edited conffile kept" grep -q '^# local edit' /etc/roomcast/roomcastd.toml
check "conffile still root:roomcast 0640" test "$(stat -c '%a %U:%G' /etc/roomcast/roomcastd.toml)" = "640 root:roomcast"

# ---------------------------------------------------------------- remove
phase "dpkg --remove"
# state as systemd would create it (StateDirectory=, CacheDirectory=; the
# broker's DynamicUser= puts them under private/ with a symlink)
install -d -o roomcast -g roomcast /var/lib/roomcast /var/cache/roomcast
touch /var/lib/roomcast/device.id /var/cache/roomcast/blob
install -d -m 0700 /var/lib/private /var/cache/private
install -d /var/lib/private/roomcast-broker /var/cache/private/roomcast-broker
touch /var/lib/private/roomcast-broker/broker.db
ln -sfn private/roomcast-broker /var/lib/roomcast-broker
ln -sfn private/roomcast-broker /var/cache/roomcast-broker
dpkg --remove roomcast roomcast-broker
for p in roomcast roomcast-broker; do
	check "$p in state config-files" test "$(dpkg-query -W -f='${Status}' "$p")" = "deinstall ok config-files"
done
for f in /usr/bin/roomcastd /usr/bin/roomcast /usr/bin/roomcast-broker /lib/systemd/system/roomcastd.service \
	/lib/systemd/system/roomcast-broker.service /usr/lib/systemd/user/roomcastd.service /usr/lib/sysusers.d/roomcast.conf \
	"${dbus_policy[@]}"; do
	check "removed: $f" test ! -e "$f"
done
for f in /etc/roomcast/roomcastd.toml /var/lib/roomcast/device.id /var/cache/roomcast/blob \
	/var/lib/private/roomcast-broker/broker.db; do
	check "kept on remove: $f" test -e "$f"
done

# ---------------------------------------------------------------- purge
phase "dpkg --purge"
dpkg --purge roomcast roomcast-broker
for p in roomcast roomcast-broker; do
	check "$p not installed" bash -c "! dpkg-query -W -f='\${Status}' $p 2>/dev/null | grep -qE 'ok (installed|config-files)'"
done
for f in /etc/roomcast /var/lib/roomcast /var/cache/roomcast /var/lib/roomcast-broker /var/cache/roomcast-broker \
	/var/lib/private/roomcast-broker /var/cache/private/roomcast-broker \
	/etc/systemd/system/multi-user.target.wants/roomcastd.service \
	/etc/systemd/system/multi-user.target.wants/roomcast-broker.service \
	/var/lib/systemd/deb-systemd-helper-enabled/roomcastd.service.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/roomcast-broker.service.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/roomcastd.service \
	/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/roomcast-broker.service; do
	check "gone after purge: $f" test ! -e "$f" -a ! -L "$f"
done
check "user roomcast kept after purge (Debian practice)" getent passwd roomcast

# ---------------------------------------------------------------- arm64, armhf under qemu
phase "arm64 and armhf binaries under qemu-user"
for a in arm64 armhf; do
	x="$tmp/x-$a"
	mkdir -p "$x"
	dpkg-deb -x "$(deb roomcast "$a")" "$x"
	dpkg-deb -x "$(deb roomcast-broker "$a")" "$x"
	read -ra qemu <<<"$(arch_qemu "$a")"
	goarch=$(arch_goarch "$a")
	for c in roomcastd roomcast-broker roomcast; do
		out=$("${qemu[@]}" "$x/usr/bin/$c" --version 2>&1) || fail "$a $c --version under ${qemu[0]} exited non-zero: $out"
		check "$a $c --version: $out" grep -qF "$c $PKG_VERSION (commit $COMMIT, linux/$goarch," <<<"$out"
	done
	hdr=$(readelf -h -l "$x/usr/bin/roomcastd")
	case $a in
	arm64)
		check "arm64: ELF machine AArch64" grep -q 'Machine:.*AArch64' <<<"$hdr"
		check "arm64: interpreter /lib/ld-linux-aarch64.so.1" grep -qF '/lib/ld-linux-aarch64.so.1' <<<"$hdr"
		;;
	armhf)
		attrs=$(readelf -A "$x/usr/bin/roomcastd")
		check "armhf: ELF machine ARM" grep -q 'Machine:.*ARM$' <<<"$hdr"
		check "armhf: interpreter /lib/ld-linux-armhf.so.3" grep -qF '/lib/ld-linux-armhf.so.3' <<<"$hdr"
		check "armhf: hard-float ABI (VFP registers)" grep -q 'Tag_ABI_VFP_args: VFP registers' <<<"$attrs"
		check "armhf: ARMv7 code" grep -q 'Tag_CPU_arch: v7' <<<"$attrs"
		;;
	esac
	check "$a: position-independent executable" grep -q 'Type:.*DYN' <<<"$hdr"
done

phase "done"
if [ "$failures" -gt 0 ]; then
	echo "package-test: $failures check(s) FAILED" >&2
	exit 1
fi
echo "package-test: all checks passed in $((SECONDS - T0))s"
