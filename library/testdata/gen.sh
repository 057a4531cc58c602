#!/bin/sh
# Regenerates the committed fixtures of package library.
#
# Needs: sox, oggenc (apt-get install sox vorbis-tools), ffmpeg (for the
# two tiny images) and perl (Debian's perl-base) to build the FLAC picture
# block. The fixtures are committed so the tag and art tests need none of
# these tools; re-run this only to change them.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# cover.png (4x4 red) and cover.jpg (4x4 blue): folder images.
ffmpeg -v error -y -f lavfi -i color=c=red:s=4x4 -frames:v 1 cover.png
ffmpeg -v error -y -f lavfi -i color=c=blue:s=4x4 -frames:v 1 cover.jpg

# A METADATA_BLOCK_PICTURE value: front cover (type 3), MIME claims
# image/jpeg (wrong on purpose: the server sniffs the bytes), the PNG.
pic=$(perl -e '
	local $/; open my $f, "<", "cover.png" or die; binmode $f; my $d = <$f>;
	my $mime = "image/jpeg"; my $desc = "front";
	my $b = pack("N", 3) . pack("N", length $mime) . $mime . pack("N", length $desc) . $desc
	      . pack("NNNN", 4, 4, 24, 0) . pack("N", length $d) . $d;
	use MIME::Base64; print encode_base64($b, "");')

# tagged.ogg: 1.5 s, 22.05 kHz mono, q0, with every tag the library reads.
sox -n -r 22050 -c 1 -b 16 "$tmp/t.wav" synth 1.5 sine 440 gain -12
oggenc -Q -q 0 -s 2001 -o tagged.ogg \
	-c "TITLE=Fixture Song" -c "ARTIST=Band A" -c "ARTIST=Guest B" -c "ALBUM=First Album" \
	-c "ALBUMARTIST=Band A" -c "TRACKNUMBER=3/12" -c "DISCNUMBER=1/2" -c "DATE=2021-05-01" \
	-c "REPLAYGAIN_TRACK_GAIN=-6.50 dB" -c "REPLAYGAIN_TRACK_PEAK=0.988" \
	-c "REPLAYGAIN_ALBUM_GAIN=-7.25 dB" -c "REPLAYGAIN_ALBUM_PEAK=1.0" \
	-c "METADATA_BLOCK_PICTURE=$pic" \
	"$tmp/t.wav"

# plain.ogg: 1 s, 22.05 kHz mono, q0, no tags at all.
sox -n -r 22050 -c 1 -b 16 "$tmp/p.wav" synth 1 sine 880 gain -12
oggenc -Q -q 0 -s 2002 -o plain.ogg "$tmp/p.wav"
