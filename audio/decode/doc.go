// Package decode opens the audio files roomcast plays — Ogg Vorbis, Ogg
// Opus, FLAC and MP3 — behind one interface, Decoder, so the player, the
// library's analyser and the media cache never care which format a track
// is. Open (seekable input) and NewReader (forward only) sniff the format
// from the bytes: "fLaC" (after an optional ID3v2 tag), "OggS" with
// "OpusHead" in the first page (else Vorbis), an ID3v2 tag or an MPEG
// frame header. Anything else is ErrUnknownFormat, naming what it looks
// like (MP4/M4A, WAV, ...).
//
// Every decoder is sample-exact (Len frames come out; SeekFrame lands on
// the requested frame), returns Tags as Vorbis comments (pictures as
// METADATA_BLOCK_PICTURE), and never panics: codec libraries run behind
// recover, and each format has a fuzz target (FuzzDecode for Vorbis,
// FuzzFLAC, FuzzMP3, FuzzOpus).
//
//   - FLAC (flac.go): metadata blocks read here (bounded), audio frames by
//     github.com/mewkiz/flac/frame with CRC-16 checked; samples divided by
//     2^(bits-1), exact for 8 to 24 bits; seeking through the SEEKTABLE,
//     else bisection over CRC-8-checked frame headers.
//   - MP3 (mp3.go, id3.go): github.com/hajimehoshi/go-mp3 v0.3.4; the
//     LAME/Xing tag's encoder delay plus the 529-sample decoder delay are
//     dropped at the start and its padding at the end. Files without the
//     tag play with their padding; their length comes from reading every
//     frame header on Open. ID3v2.2-2.4 and ID3v1 are mapped to Vorbis
//     comment names by a frame table (add a frame there to read more).
//     go-mp3 produces 16-bit samples (so MP3 peaks clip at full scale),
//     and does not decode MPEG 2.5; it also mis-decodes 22.05 kHz
//     MPEG-2 at 32 kbit/s (other rates and bitrates tested match ffmpeg
//     to 5e-5).
//   - Opus (opus.go, opus_lib.go): our Ogg layer, libopus (the system's
//     libopus.so.0, loaded at run time) for the packets; pre-skip, end
//     trimming by granule position, the header's output gain, 48 kHz.
//     Bit-identical to opusdec. After a seek the decoder restarts 80 ms
//     early, so samples converge to a straight decode but are not
//     bit-identical. Without cgo Opus is ErrUnsupported.
//
// The rest of this comment describes the Ogg Vorbis decoder (stream.go,
// header.go, ogg.go), which the Opus decoder shares its Ogg layer with.
//
// It reads the Ogg container itself (RFC 3533: capture pattern, version 0,
// CRC-32 verified on every page, lacing, packets continued across pages,
// page sequence numbers) and drives github.com/jfreymuth/vorbis for the
// audio packets. Compared with github.com/jfreymuth/oggvorbis it
//
//   - does not clamp samples: a loud master's peaks above 1.0 reach the
//     gain stage intact;
//   - is sample-exact: leading samples are dropped according to the first
//     audio page's granule position and the end is cut at the final
//     granule position (Vorbis I, appendix A.2), so a track decodes to
//     exactly Len() frames and gapless playback works; SeekFrame lands
//     on exactly the requested frame;
//   - never panics on malformed input: headers are validated by this
//     package before the vorbis library sees them (bounded table sizes,
//     complete Huffman trees, valid cross references, mode numbers), and
//     every call into the library is guarded by recover;
//   - keeps memory bounded: pages are at most 64 KiB, an audio packet at
//     most 1 MiB and 4096 pages (header packets, which may carry cover art,
//     16 MiB), setup tables a few tens of MiB at most.
//
// Errors wrap the sentinels ErrNotVorbis, ErrCorrupt, ErrTruncated,
// ErrChained, ErrNotSeekable, ErrOutOfRange and ErrClosed; use errors.Is.
//
// Limitations: chained streams (several logical streams back to back) are
// reported as ErrChained; a multiplexed file decodes its first Vorbis
// stream and ignores the others. A Stream is not safe for concurrent use.
package decode
