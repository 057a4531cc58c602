#!/bin/sh
# CPU share and peak RSS of a roomcastd-like process (package player's
# playAlbum in album_test.go: fetch from local files, decode, gain, limiter, volume,
# miniaudio null output in real time) against MPD playing the same album
# to its null output, in the same run.
#
# usage: audio/player/testdata/cpu_vs_mpd.sh [SECONDS]   (default 60)
# needs: go, sox, oggenc, mpd, mpc (apt-get install sox vorbis-tools mpd mpc)
#
# Both players run one after the other on the same files for SECONDS
# each; CPU = (utime+stime) over the window from /proc/PID/stat, divided
# by the wall time (100 % = one core); peak RSS = VmHWM at the end. The
# processes this script starts are stopped by pid.
set -eu
secs=${1:-60}
root=$(cd "$(dirname "$0")/../../.." && pwd)
tmp=$(mktemp -d)
mpdpid=""
cleanup() {
	[ -n "$mpdpid" ] && kill "$mpdpid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
mkdir "$tmp/music"

# An album: 4 tracks of music-like material (tones + pink noise), q5.
n=1
for f in 220 247 262 294; do
	sox -n -r 44100 -b 16 "$tmp/t.wav" synth $((secs / 3 + 5)) sine $f sine $((f * 3 / 2)) pinknoise \
		channels 3 remix 1,2v0.5,3v0.3 2,3v0.5,1v0.3 norm -3
	oggenc -Q -q 5 -o "$tmp/music/0$n.ogg" "$tmp/t.wav"
	n=$((n + 1))
done
rm "$tmp/t.wav"

tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
# measure PID NAME: CPU over secs seconds after a 2 s settling period.
measure() {
	sleep 2
	c0=$(cpu "$1"); t0=$(date +%s.%N)
	sleep "$secs"
	c1=$(cpu "$1"); t1=$(date +%s.%N); rss=$(hwm "$1")
	awk -v c="$((c1 - c0))" -v tck="$tck" -v t0="$t0" -v t1="$t1" -v rss="$rss" -v name="$2" \
		'BEGIN { printf "%-10s CPU %5.2f %% of one core   peak RSS %6.1f MiB\n", name, 100 * c / tck / (t1 - t0), rss / 1024 }'
	# CPU ticks per thread since start (the busiest ones), to see where it goes.
	for t in /proc/"$1"/task/*; do echo "$(awk '{print $14 + $15}' "$t/stat") $(cat "$t/comm")/$(basename "$t")"; done |
		sort -rn | head -3 | awk -v tck="$tck" '{ printf "           thread %-22s %6.2f s CPU\n", $2, $1 / tck }'
}

# roomcastd-like: the player package's harness, compiled once.
(cd "$root" && go test -c -o "$tmp/player.test" ./audio/player/)
ROOMCAST_ALBUM_DIR="$tmp/music" ROOMCAST_ALBUM_SECS=$((secs + 3)) "$tmp/player.test" >"$tmp/player.log" 2>&1 &
ppid=$!
measure "$ppid" roomcast
wait "$ppid" || { cat "$tmp/player.log"; exit 1; }

# MPD with a null output (synced to real time) on the same files.
port=$((6600 + $$ % 1000))
cat >"$tmp/mpd.conf" <<CONF
music_directory "$tmp/music"
db_file "$tmp/mpd.db"
state_file "$tmp/mpd.state"
pid_file "$tmp/mpd.pid"
log_file "$tmp/mpd.log"
bind_to_address "127.0.0.1"
port "$port"
audio_output {
	type "null"
	name "null"
	sync "yes"
}
CONF
mpd --no-daemon "$tmp/mpd.conf" &
mpdpid=$!
for i in $(seq 50); do mpc -q -p "$port" status >/dev/null 2>&1 && break; sleep 0.1; done
mpc -q -p "$port" update --wait
mpc -q -p "$port" add /
mpc -q -p "$port" play
measure "$mpdpid" mpd
mpc -p "$port" status | sed -n 1,2p | sed 's/^/           mpc: /'
mpc -q -p "$port" stop
