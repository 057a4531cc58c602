package library

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// DBFileName is the index's name inside the state directory.
const DBFileName = "library.db"

// schemaVersion changes when the tables change; an index with another
// version is emptied and rebuilt by the next scan (it is a cache).
const schemaVersion = "2"

// fileRec is one indexed file: a track, or a file that could not be read
// as one (Err set). Everything but the analysis fields is filled by the
// scanner from the file itself; a changed size or modification time
// makes the scanner read the file again and clears the analysis.
type fileRec struct {
	Path    string // inside the music dir, slash-separated
	ID      string
	Size    int64
	MtimeNS int64
	Err     string // non-empty: not a playable track, and why

	Tags     trackTags
	Rate     int
	Channels int
	Frames   int64
	Codec    string // decode.Decoder.Codec: vorbis, opus, flac, mp3
	BitDepth int    // bits per sample of a lossless source, 0 for lossy
	Embedded bool   // carries an embedded cover image
	Cover    string // folder image next to it (path inside the music dir), or ""
	AlbumID  string

	// Analysis: Analysed is set once the file was decoded completely or
	// failed to decode (AnalysisErr). nil values are unknown (silence has
	// no loudness and no peak).
	Analysed    bool
	AnalysisErr string
	LUFS        *float64
	TruePeak    *float64
	LRA         *float64
}

// playable reports whether the track is offered to clients.
func (f *fileRec) playable() bool { return f.Err == "" && f.AnalysisErr == "" }

// albumRec holds an album's analysis. An album without a record, or with
// Analysed false, is measured again.
type albumRec struct {
	ID       string
	Analysed bool
	LUFS     *float64
	TruePeak *float64
}

// indexDB is the SQLite file. Only the library's worker goroutine uses it
// (one connection), so statements never wait for each other.
type indexDB struct {
	db   *sql.DB
	path string
}

const schema = `
CREATE TABLE IF NOT EXISTS meta (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
	path TEXT PRIMARY KEY,
	id TEXT NOT NULL,
	size INTEGER NOT NULL,
	mtime_ns INTEGER NOT NULL,
	error TEXT NOT NULL DEFAULT '',
	tags TEXT NOT NULL DEFAULT '{}',
	rate INTEGER NOT NULL DEFAULT 0,
	channels INTEGER NOT NULL DEFAULT 0,
	frames INTEGER NOT NULL DEFAULT 0,
	embedded_art INTEGER NOT NULL DEFAULT 0,
	cover TEXT NOT NULL DEFAULT '',
	album_id TEXT NOT NULL DEFAULT '',
	analysed INTEGER NOT NULL DEFAULT 0,
	analysis_error TEXT NOT NULL DEFAULT '',
	lufs REAL,
	true_peak REAL,
	lra REAL,
	codec TEXT NOT NULL DEFAULT 'vorbis',
	bit_depth INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS albums (
	id TEXT PRIMARY KEY,
	analysed INTEGER NOT NULL DEFAULT 0,
	lufs REAL,
	true_peak REAL
);
`

// openIndex opens (creating if needed) the index at path for the music
// directory musicDir (absolute). An index built for another directory or
// schema version is emptied.
func openIndex(ctx context.Context, path, musicDir string) (*indexDB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	x := &indexDB{db: db, path: path}
	if err := x.init(ctx, musicDir); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index: %w", err)
	}
	return x, nil
}

func (x *indexDB) init(ctx context.Context, musicDir string) error {
	if _, err := x.db.ExecContext(ctx, schema); err != nil {
		return err
	}
	meta := map[string]string{}
	rows, err := x.db.QueryContext(ctx, `SELECT key, value FROM meta`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return err
		}
		meta[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if meta["schema"] == "1" && meta["music_dir"] == musicDir {
		// Version 1 indexed Ogg Vorbis only: add the format columns and
		// keep the analyses.
		return x.tx(ctx, func(tx *sql.Tx) error {
			for _, q := range []string{
				`ALTER TABLE files ADD COLUMN codec TEXT NOT NULL DEFAULT 'vorbis'`,
				`ALTER TABLE files ADD COLUMN bit_depth INTEGER NOT NULL DEFAULT 0`,
				`UPDATE meta SET value = '` + schemaVersion + `' WHERE key = 'schema'`,
			} {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if meta["schema"] == schemaVersion && meta["music_dir"] == musicDir {
		return nil
	}
	return x.tx(ctx, func(tx *sql.Tx) error {
		// Dropped, not emptied: an older schema's tables lack columns.
		for _, q := range []string{`DROP TABLE files`, `DROP TABLE albums`, `DELETE FROM meta`, schema} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('schema', ?), ('music_dir', ?)`, schemaVersion, musicDir)
		return err
	})
}

func (x *indexDB) close() error { return x.db.Close() }

func (x *indexDB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// load reads the whole index.
func (x *indexDB) load(ctx context.Context) (map[string]*fileRec, map[string]*albumRec, error) {
	files := map[string]*fileRec{}
	rows, err := x.db.QueryContext(ctx, `SELECT path, id, size, mtime_ns, error, tags, rate, channels, frames,
		embedded_art, cover, album_id, analysed, analysis_error, lufs, true_peak, lra, codec, bit_depth FROM files`)
	if err != nil {
		return nil, nil, fmt.Errorf("load index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		f := &fileRec{}
		var tags string
		var lufs, tp, lra sql.NullFloat64
		if err := rows.Scan(&f.Path, &f.ID, &f.Size, &f.MtimeNS, &f.Err, &tags, &f.Rate, &f.Channels, &f.Frames,
			&f.Embedded, &f.Cover, &f.AlbumID, &f.Analysed, &f.AnalysisErr, &lufs, &tp, &lra, &f.Codec, &f.BitDepth); err != nil {
			return nil, nil, fmt.Errorf("load index: %w", err)
		}
		if err := json.Unmarshal([]byte(tags), &f.Tags); err != nil {
			// A damaged row: forget it, the next scan reads the file again.
			continue
		}
		f.LUFS, f.TruePeak, f.LRA = fromNull(lufs), fromNull(tp), fromNull(lra)
		files[f.Path] = f
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load index: %w", err)
	}
	albums := map[string]*albumRec{}
	arows, err := x.db.QueryContext(ctx, `SELECT id, analysed, lufs, true_peak FROM albums`)
	if err != nil {
		return nil, nil, fmt.Errorf("load index: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		a := &albumRec{}
		var lufs, tp sql.NullFloat64
		if err := arows.Scan(&a.ID, &a.Analysed, &lufs, &tp); err != nil {
			return nil, nil, fmt.Errorf("load index: %w", err)
		}
		a.LUFS, a.TruePeak = fromNull(lufs), fromNull(tp)
		albums[a.ID] = a
	}
	if err := arows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load index: %w", err)
	}
	return files, albums, nil
}

// saveScan writes the files a scan read or updated, deletes the removed
// ones and invalidates the analysis of the albums they belong(ed) to, in
// one transaction.
func (x *indexDB) saveScan(ctx context.Context, put []*fileRec, del []string, staleAlbums []string) error {
	err := x.tx(ctx, func(tx *sql.Tx) error {
		for _, f := range put {
			tags, err := json.Marshal(f.Tags)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO files(path, id, size, mtime_ns, error, tags, rate,
				channels, frames, embedded_art, cover, album_id, analysed, analysis_error, lufs, true_peak, lra, codec, bit_depth)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				f.Path, f.ID, f.Size, f.MtimeNS, f.Err, string(tags), f.Rate, f.Channels, f.Frames, f.Embedded,
				f.Cover, f.AlbumID, f.Analysed, f.AnalysisErr, toNull(f.LUFS), toNull(f.TruePeak), toNull(f.LRA), f.Codec, f.BitDepth); err != nil {
				return err
			}
		}
		for _, p := range del {
			if _, err := tx.ExecContext(ctx, `DELETE FROM files WHERE path = ?`, p); err != nil {
				return err
			}
		}
		for _, id := range staleAlbums {
			if _, err := tx.ExecContext(ctx, `DELETE FROM albums WHERE id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save scan: %w", err)
	}
	return nil
}

// saveAnalysis stores the measurements of an album and its tracks.
func (x *indexDB) saveAnalysis(ctx context.Context, tracks []*fileRec, a *albumRec) error {
	err := x.tx(ctx, func(tx *sql.Tx) error {
		for _, f := range tracks {
			if _, err := tx.ExecContext(ctx, `UPDATE files SET analysed = ?, analysis_error = ?, lufs = ?, true_peak = ?, lra = ?
				WHERE path = ? AND size = ? AND mtime_ns = ?`,
				f.Analysed, f.AnalysisErr, toNull(f.LUFS), toNull(f.TruePeak), toNull(f.LRA), f.Path, f.Size, f.MtimeNS); err != nil {
				return err
			}
		}
		if a != nil {
			_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO albums(id, analysed, lufs, true_peak) VALUES (?, ?, ?, ?)`,
				a.ID, a.Analysed, toNull(a.LUFS), toNull(a.TruePeak))
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save analysis: %w", err)
	}
	return nil
}

func fromNull(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	f := v.Float64
	return &f
}

func toNull(p *float64) sql.NullFloat64 {
	if p == nil {
		return sql.NullFloat64{}
	}
	return sql.NullFloat64{Float64: *p, Valid: true}
}

// indexPath is where the index of stateDir lives.
func indexPath(stateDir string) string { return filepath.Join(stateDir, DBFileName) }
