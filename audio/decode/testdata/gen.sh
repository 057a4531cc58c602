#!/bin/sh
# Regenerates the Ogg Vorbis test fixtures of package decode.
#
# Needs: sox, oggenc, oggdec (apt-get install sox libsox-fmt-all vorbis-tools)
# and perl (Debian's perl-base, always installed) for the float WAV of
# hot.ogg, which sox cannot write (it clips at full scale).
#
# The fixtures are committed, so tests do not need these tools; re-run
# this only to change them. Serial numbers are fixed (-s) so files are
# reproducible with the same vorbis-tools/libvorbis versions.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# stereo.ogg: 44.1 kHz stereo, 52937 frames (1.2 s + 17: an odd length),
# tones + pink noise at q6 (packets above 255 bytes, so re-paginated
# variants continue packets across pages), with tags (mixed-case keys, repeated keys, ReplayGain,
# a raw METADATA_BLOCK_PICTURE value).
sox -r 44100 -n -b 16 "$tmp/stereo.wav" synth 52937s \
	sine 220 sine 331 sine 587 pinknoise channels 4 remix 1,2v0.5,4 2,3,4v0.7 norm -6
oggenc -Q -q 6 -s 1001 -t "Fixture Title" -a "Artist One" -c "artist=Artist Two" -l "Album" \
	-c "REPLAYGAIN_TRACK_GAIN=-3.10 dB" -c "MixedCase=Value=with=equals" \
	-c "METADATA_BLOCK_PICTURE=AAAAAwAAAAlpbWFnZS9wbmc=" \
	-o stereo.ogg "$tmp/stereo.wav"

# mono_short.ogg: 22.05 kHz mono, 1234 frames: a single audio page that is
# both the first and the last one (end trimmed, not the beginning).
sox -r 22050 -n -b 16 "$tmp/mono_short.wav" synth 1234s sine 440 sine 1000 channels 2 remix 1-2 norm -3
oggenc -Q -q 3 -s 1002 -o mono_short.ogg "$tmp/mono_short.wav"

# mono22k.ogg: 22.05 kHz mono, 11037 frames, several pages.
sox -r 22050 -n -b 16 "$tmp/mono22k.wav" synth 11037s sine 300 pinknoise channels 2 remix 1-2 norm -4
oggenc -Q -q 1 -s 1003 -o mono22k.ogg "$tmp/mono22k.wav"

# hot.ogg: 44.1 kHz mono sine at +3 dBFS peak (amplitude 1.4125), fed to
# oggenc as IEEE float so nothing clips before encoding.
perl -e '
	my ($out, $rate, $n, $f, $a) = @ARGV;
	my $d = "";
	$d .= pack("f<", $a * sin(2 * 3.14159265358979 * $f * $_ / $rate)) for 0 .. $n - 1;
	open(my $fh, ">:raw", $out) or die;
	print $fh "RIFF", pack("V", 36 + length $d), "WAVE", "fmt ",
		pack("VvvVVvv", 16, 3, 1, $rate, $rate * 4, 4, 32), "data", pack("V", length $d), $d;
' "$tmp/hot.wav" 44100 13230 997 1.4125
oggenc -Q -q 4 -s 1004 -o hot.ogg "$tmp/hot.wav"

# chained.ogg: two logical streams back to back (RFC 3533 chaining).
sox -r 22050 -n -b 16 "$tmp/second.wav" synth 3000s sine 660
oggenc -Q -q 0 -s 1005 -o "$tmp/second.ogg" "$tmp/second.wav"
cat mono_short.ogg "$tmp/second.ogg" > chained.ogg

# libvorbis (oggdec) reference decodes, raw signed 16-bit little endian.
oggdec -Q -R -b 16 -e 0 -s 1 -o mono_short.s16 mono_short.ogg
oggdec -Q -R -b 16 -e 0 -s 1 -o mono22k.s16 mono22k.ogg

ls -l ./*.ogg ./*.s16

# ---- FLAC, MP3 and Opus fixtures (need flac, ffmpeg with libmp3lame and
# libopus, a small PNG made by ffmpeg) ----
ffmpeg -loglevel error -y -f lavfi -i color=c=red:s=8x8 -frames:v 1 "$tmp/cover.png"

# stereo16.flac: 44.1 kHz 16-bit stereo, the stereo.wav signal, 10 seek
# points, tags and a front-cover PICTURE block.
flac -s -f --blocksize=4096 -S 10x -T "TITLE=Flac Title" -T "ARTIST=Artist One" \
	-T "ALBUM=Album" -T "REPLAYGAIN_TRACK_GAIN=-3.10 dB" --picture="3|image/png|front|8x8x24|$tmp/cover.png" \
	-o stereo16.flac "$tmp/stereo.wav"

# hires24.flac: 96 kHz 24-bit stereo noise and tones, 0.3 s + 7 frames,
# no SEEKTABLE (seeking bisects).
sox -r 96000 -n -b 24 "$tmp/hires.wav" synth 28807s sine 1000 whitenoise channels 2 norm -1
flac -s -f --no-seektable -o hires24.flac "$tmp/hires.wav"

# mono8k.flac: 8 kHz 8-bit mono (small rates and depths).
sox -r 8000 -n -b 8 "$tmp/mono8k.wav" synth 4001s sine 300 norm -2
flac -s -f -o mono8k.flac "$tmp/mono8k.wav"

ls -l ./*.flac

# stereo.mp3: the stereo.wav signal through ffmpeg's libmp3lame (which
# writes the Xing/LAME info tag: delay and padding), ID3v2.4 tags with a
# TXXX ReplayGain value and an APIC front cover, and an ID3v1 tag.
ffmpeg -loglevel error -y -i "$tmp/stereo.wav" -i "$tmp/cover.png" -map 0 -map 1 -c:a libmp3lame -b:a 128k \
	-c:v copy -id3v2_version 4 -write_id3v1 1 -metadata title="Mp3 Title" -metadata artist="Artist One" \
	-metadata album=Album -metadata track=3/12 -metadata REPLAYGAIN_TRACK_GAIN="-3.10 dB" \
	-metadata:s:v comment="Cover (front)" stereo.mp3
# mono22k.mp3: MPEG-2 (576 samples per frame), mono, ID3v2.3, 40 kbit/s
# (small frames: the bit reservoir spans several of them).
ffmpeg -loglevel error -y -f lavfi -i "sine=f=440:r=22050:d=1.3" -c:a libmp3lame -b:a 40k -ac 1 -id3v2_version 3 mono22k.mp3
# notag.mp3: no info tag (plays with its padding), no ID3.
ffmpeg -loglevel error -y -f lavfi -i "sine=f=440:r=44100:d=0.5" -c:a libmp3lame -b:a 96k -write_xing 0 -id3v2_version 0 notag.mp3

# stereo.opus: the stereo.wav signal through opusenc (resampled to 48 kHz,
# pre-skip 312), tags and a front cover; mono.opus: ffmpeg's libopus.
opusenc --quiet --serial 1006 --title "Opus Title" --artist "Artist One" --album Album \
	--comment "R128_TRACK_GAIN=-512" --picture "3|image/png|front|8x8x24|$tmp/cover.png" "$tmp/stereo.wav" stereo.opus
ffmpeg -loglevel error -y -f lavfi -i "sine=f=440:r=48000:d=0.9" -c:a libopus -b:a 48k -ac 1 mono.opus
