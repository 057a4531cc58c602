// Package decode is a robust, sample-exact Ogg Vorbis decoder for the
// roomcast speaker daemon.
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
