// Package library indexes a music folder, measures the loudness of its
// tracks and albums, and serves metadata, covers and media over HTTP.
//
// # What is indexed
//
// Ogg Vorbis (.ogg, .oga), Ogg Opus (.opus), FLAC (.flac) and MP3
// (.mp3) files, any case, under the music directory; the format is
// sniffed from the content by package audio/decode, so the extension only
// selects what is read. Audio files in formats we do not play (.m4a, .wav,
// .aiff, .wma, ...) are reported, by extension and count
// (Status.Unsupported) and each by name (Failures, stage "walk"), never
// dropped silently. Hidden entries (names starting with ".") and anything
// but regular files are skipped. For each file: the tags as Vorbis
// comments (FLAC VORBIS_COMMENT blocks, Opus comment headers, MP3 ID3v2.2-
// 2.4 frames mapped to the same names with ID3v1 as fallback) TITLE (else
// the file name), ARTIST (repeated values joined with ", "), ALBUM,
// ALBUMARTIST, TRACKNUMBER and DISCNUMBER ("3" or "3/12"; TRACKTOTAL/
// DISCTOTAL as fallbacks), DATE, REPLAYGAIN_{TRACK,ALBUM}_{GAIN,PEAK}
// (R128_{TRACK,ALBUM}_GAIN as fallback gains, +5 dB); the codec, sample
// rate, bit depth (FLAC), channels and exact length (so the duration);
// whether it embeds a cover (METADATA_BLOCK_PICTURE, a base64 FLAC picture
// block: FLAC PICTURE blocks and ID3 APIC frames arrive as such; front
// cover preferred; or legacy COVERART); and the folder image next to it
// (folder/cover/front .jpg/.jpeg/.png, any case). Text is cleaned (valid
// UTF-8, no control characters, at most 1 KiB per value). Files that
// cannot be decoded are listed with the reason (Status,
// GET /v1/library/status) and never offered.
//
// Albums group tracks by album artist (else artist) and album title,
// compared case-insensitively with white space collapsed; a track without
// ALBUM is grouped with the untagged files of its folder, titled after
// the folder. Tracks are ordered by disc, track number, then path.
//
// # Ids and URIs
//
// A track's id is the first 16 hex digits of the SHA-256 of its path
// relative to the music directory (slash-separated): stable across
// rescans and re-tagging; moving a file gives it a new id (remove + add).
// An album's id is the same over "album", the normalised artist and the
// normalised title. URIs are roomcast:track:<id> and roomcast:album:<id>;
// ResolveContext turns an album URI into its ordered track URIs, and
// ResolveTracks (which makes a *Library a broker.Resolver) into the
// tracks with metadata and loudness; Track and Album look up one track or
// album. Ids from
// clients are only looked up in the index; no client input ever becomes
// a file name.
//
// # Index and incremental rescans
//
// The index is an SQLite database, library.db, in the state directory. It
// is a cache: deleting it costs a full rescan; an index built for another
// music directory or schema version is emptied on Open. A scan walks the
// folder and reads only files whose size or modification time differ
// from the index; files no longer found are removed (except under a
// folder that could not be read this time, whose entries are kept);
// files whose content cannot be decoded keep their failure until they
// change. Schema 1 indexes (Vorbis only) are migrated in place: the
// format columns are added and analyses kept. Folder images are re-checked on every scan without reading the
// tracks.
//
// All file access goes through an os.Root on the music directory:
// symlinks are followed only while they stay inside it (absolute symlinks
// are not followed at all); links leading outside are reported, not
// followed. Every folder and file is taken once (by device and inode), so
// symlink loops end and a file reachable under two names is indexed once,
// under the first name in walk order (real folders before symlinks).
// Folders deeper than 64 levels are reported and skipped. Media files are
// opened non-blocking, so a FIFO named like a track cannot hang the scan.
//
// # Loudness
//
// After a scan has committed the tags (so the library is browsable at
// once), albums with a new or changed track are analysed one at a time:
// every track of the album is decoded completely (package audio/decode)
// and metered (package loudness) for its integrated loudness (LUFS), true
// peak (dBTP) and loudness range (LU). The same samples feed one album
// meter per stream format, track after track; the album loudness is
// loudness.Album over those meters (R128 gating over all the album's
// blocks together, blocks across track boundaries measured as the album
// plays gapless) and the album true peak is the maximum of the tracks'.
// Memory is two meters per format (≈ 330 KB each), whatever the album's
// size. A change to one track re-measures its whole album; unchanged
// albums are never decoded again. A track that does not decode completely
// (truncated, corrupt) gets the reason recorded and leaves the catalog.
//
// # Concurrency
//
// One goroutine owns the index: the one running Run (or RunOnce). It
// walks, reads, decodes, writes the database and, after each commit,
// publishes an immutable catalog through an atomic pointer (at most once
// a second during analysis). HTTP handlers and the Track, Album,
// ResolveContext and Status methods only read the published catalog, so
// they never wait for a scan or an analysis, and always see a committed
// state. Rescan only signals the owner (a scan starts between albums).
// Status progress is guarded by a mutex held for field copies only.
//
// # HTTP
//
// Register adds, behind the caller's auth wrapper: GET /v1/media/{id}
// (http.ServeContent: single and multiple ranges, ETag from id + size +
// mtime, Last-Modified, If-None-Match, If-Range, HEAD; Content-Type
// audio/ogg), GET /v1/art/{id} (track or album cover, Content-Type sniffed
// from the bytes), GET /v1/library (albums with tracks, ?offset=&limit=,
// limit 1–500, default 50, with the total), GET /v1/library/albums/{id},
// GET /v1/library/tracks/{id}, GET /v1/library/status and POST
// /v1/library/rescan. A media file whose size or modification time no
// longer match the index is refused (503, Retry-After, a rescan is
// requested), and a file rewritten while being sent ends the response
// short (its change time is checked after every read), so a response
// never mixes two versions of a file.
package library
