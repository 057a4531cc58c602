#!/bin/sh
# Regenerates the demo library that `make run` plays (committed, so running
# the demo needs no tools). Needs sox and oggenc (apt-get install sox
# vorbis-tools).
#
# - "Roomcast Demo – Gapless Chords": one continuous 15 s chord progression
#   (no silence anywhere) cut into three tracks at odd sample offsets; a
#   gapless player joins them with no click.
# - "Roomcast Demo – Levels": two tracks at very different loudness (a quiet
#   sine, a loud square-ish tone), for loudness normalization.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rate=44100

# One continuous signal: C major, F major, G major chords, 5 s each, crossfaded.
sox -n -r $rate -c 2 -b 16 "$tmp/c.wav" synth 5 sine 261.63 sine 329.63 sine 392.00 gain -14 remix 1,2,3 1,2,3
sox -n -r $rate -c 2 -b 16 "$tmp/f.wav" synth 5 sine 349.23 sine 440.00 sine 523.25 gain -14 remix 1,2,3 1,2,3
sox -n -r $rate -c 2 -b 16 "$tmp/g.wav" synth 5 sine 392.00 sine 493.88 sine 587.33 gain -14 remix 1,2,3 1,2,3
sox "$tmp/c.wav" "$tmp/f.wav" "$tmp/g.wav" "$tmp/all.wav" splice -q 5,0.05 10,0.05
# Cut at odd sample offsets.
a=$((5 * rate + 1237)); b=$((10 * rate + 4411))
sox "$tmp/all.wav" "$tmp/1.wav" trim 0s ${a}s
sox "$tmp/all.wav" "$tmp/2.wav" trim ${a}s $((b - a))s
sox "$tmp/all.wav" "$tmp/3.wav" trim ${b}s
n=1
for title in "C Major" "F Major" "G Major"; do
	oggenc -Q -q 2 -s $((100 + n)) -o "gapless-0$n.ogg" \
		-c "TITLE=$title" -c "ARTIST=Roomcast" -c "ALBUMARTIST=Roomcast" \
		-c "ALBUM=Roomcast Demo – Gapless Chords" -c "TRACKNUMBER=$n/3" "$tmp/$n.wav"
	n=$((n + 1))
done

sox -n -r $rate -c 2 -b 16 "$tmp/quiet.wav" synth 6 sine 440 gain -30
sox -n -r $rate -c 2 -b 16 "$tmp/loud.wav" synth 6 sine 220 sine 660 gain -1 overdrive 10 gain -2
oggenc -Q -q 2 -s 201 -o levels-01.ogg -c "TITLE=Quiet" -c "ARTIST=Roomcast" \
	-c "ALBUM=Roomcast Demo – Levels" -c "TRACKNUMBER=1/2" "$tmp/quiet.wav"
oggenc -Q -q 2 -s 202 -o levels-02.ogg -c "TITLE=Loud" -c "ARTIST=Roomcast" \
	-c "ALBUM=Roomcast Demo – Levels" -c "TRACKNUMBER=2/2" "$tmp/loud.wav"
