// Package store keeps the broker's durable data in SQLite: users, their
// tokens (hashed), device registrations and each user's last player state.
//
// A Store is safe for concurrent use by several goroutines, and several
// processes may open the same file (WAL mode, busy timeout): the
// `roomcast-broker token create` command writes while a broker runs.
package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/roomcast/roomcast/protocol"
	_ "modernc.org/sqlite"
)

// ErrUnauthorized is returned for a token that is unknown or malformed.
var ErrUnauthorized = errors.New("unknown token")

// TokenPrefix starts every token, so a leaked one is recognisable.
const TokenPrefix = "rc_"

// Store is the SQLite database.
type Store struct {
	db *sql.DB
}

// FileName is the database's name inside the state directory.
const FileName = "broker.db"

// OpenDir opens (creating if needed) the database in dir.
func OpenDir(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return Open(filepath.Join(dir, FileName))
}

// Open opens (creating if needed) the database at path.
func Open(path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return &Store{db: db}, nil
}

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
	hash TEXT PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	label TEXT NOT NULL DEFAULT '',
	created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	id TEXT NOT NULL,
	info TEXT NOT NULL,
	last_seen_ms INTEGER NOT NULL,
	PRIMARY KEY (user_id, id)
);
CREATE TABLE IF NOT EXISTS revoked_tokens (
	hash TEXT PRIMARY KEY,
	revoked_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_tokens_ms ON revoked_tokens(revoked_ms);
CREATE TABLE IF NOT EXISTS player_state (
	user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	active_device TEXT NOT NULL DEFAULT '',
	state TEXT,
	updated_ms INTEGER NOT NULL
);
`

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// HashToken is the form in which tokens are stored. Tokens are 256-bit
// random values, so a plain SHA-256 is enough to make a stolen database
// useless for logging in.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// CreateToken makes a new token for user, creating the user if needed, and
// returns it. Only its hash is stored.
func (s *Store) CreateToken(ctx context.Context, user, label string) (string, error) {
	if err := checkUser(user); err != nil {
		return "", err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("store: token: %w", err)
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	now := time.Now().UnixMilli()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("store: create token: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO users(name, created_ms) VALUES(?, ?) ON CONFLICT(name) DO NOTHING`, user, now); err != nil {
		return "", fmt.Errorf("store: create token: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens(hash, user_id, label, created_ms) SELECT ?, id, ?, ? FROM users WHERE name = ?`,
		HashToken(token), label, now, user); err != nil {
		return "", fmt.Errorf("store: create token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("store: create token: %w", err)
	}
	return token, nil
}

func checkUser(user string) error {
	if user == "" || len(user) > 64 {
		return fmt.Errorf("store: user name must be 1-64 characters")
	}
	for _, r := range user {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r)) {
			return fmt.Errorf("store: user name %q: character %q not allowed", user, r)
		}
	}
	return nil
}

// DeleteToken revokes a token. Deleting an unknown token is not an error.
func (s *Store) DeleteToken(ctx context.Context, token string) error {
	if _, err := s.revokeHash(ctx, HashToken(token)); err != nil {
		return fmt.Errorf("store: delete token: %w", err)
	}
	return nil
}

// TokenInfo describes a stored token without its secret.
type TokenInfo struct {
	// ID is the first TokenIDLen hex digits of the token's hash: enough
	// to name it in `roomcast-broker token revoke`, useless to log in.
	ID        string `json:"id"`
	User      string `json:"user"`
	Label     string `json:"label"`
	CreatedMS int64  `json:"created_ms"`
}

// TokenIDLen is the length of TokenInfo.ID.
const TokenIDLen = 12

// ErrNoSuchToken is RevokeToken's answer for an id or token it does not
// hold (or an id prefix that matches several).
var ErrNoSuchToken = errors.New("no such token")

// Tokens lists the tokens of user (every user's when user is ""), oldest
// first.
func (s *Store) Tokens(ctx context.Context, user string) ([]TokenInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.hash, u.name, t.label, t.created_ms FROM tokens t JOIN users u ON u.id = t.user_id
		WHERE ? = '' OR u.name = ? ORDER BY t.created_ms, t.hash`, user, user)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	defer rows.Close()
	var out []TokenInfo
	for rows.Next() {
		var ti TokenInfo
		if err := rows.Scan(&ti.ID, &ti.User, &ti.Label, &ti.CreatedMS); err != nil {
			return nil, fmt.Errorf("store: list tokens: %w", err)
		}
		ti.ID = ti.ID[:TokenIDLen]
		out = append(out, ti)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes the token named by ref: the token itself, or its
// id as Tokens lists it (at least 8 hex digits of a unique prefix). It
// returns what was revoked, or ErrNoSuchToken. A broker notices the
// revocation within its poll interval (RevokedSince) and closes the
// connections that use the token.
func (s *Store) RevokeToken(ctx context.Context, ref string) (TokenInfo, error) {
	ref = strings.TrimSpace(ref)
	var lo string // the whole hash, or a prefix of it
	switch {
	case strings.HasPrefix(ref, TokenPrefix):
		lo = HashToken(ref)
	case len(ref) >= 8 && len(ref) <= 64 && isHex(ref):
		lo = strings.ToLower(ref)
	default:
		return TokenInfo{}, fmt.Errorf("store: revoke %q: want a token (%s...) or a token id of 8-64 hex digits", ref, TokenPrefix)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT t.hash, u.name, t.label, t.created_ms FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash >= ? AND t.hash < ? LIMIT 2`, lo, lo+"g") // hex hashes with the prefix sort below prefix+"g"
	if err != nil {
		return TokenInfo{}, fmt.Errorf("store: revoke: %w", err)
	}
	var found []TokenInfo
	var hash string
	for rows.Next() {
		var ti TokenInfo
		if err := rows.Scan(&hash, &ti.User, &ti.Label, &ti.CreatedMS); err != nil {
			rows.Close()
			return TokenInfo{}, fmt.Errorf("store: revoke: %w", err)
		}
		ti.ID = hash[:TokenIDLen]
		found = append(found, ti)
	}
	rows.Close()
	switch len(found) {
	case 0:
		return TokenInfo{}, fmt.Errorf("store: revoke %s: %w", ref, ErrNoSuchToken)
	case 2:
		return TokenInfo{}, fmt.Errorf("store: revoke %s: %w (the id matches several: give more digits)", ref, ErrNoSuchToken)
	}
	if _, err := s.revokeHash(ctx, hash); err != nil {
		return TokenInfo{}, fmt.Errorf("store: revoke: %w", err)
	}
	return found[0], nil
}

// revokedKeep is how long a revocation is remembered for brokers that poll.
const revokedKeep = 7 * 24 * time.Hour

// revokeHash deletes the token with hash and records the revocation; it
// reports whether a token was deleted.
func (s *Store) revokeHash(ctx context.Context, hash string) (bool, error) {
	now := time.Now().UnixMilli()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE hash = ?`, hash)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `INSERT INTO revoked_tokens(hash, revoked_ms) VALUES(?, ?)
		ON CONFLICT(hash) DO UPDATE SET revoked_ms = excluded.revoked_ms`, hash, now); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM revoked_tokens WHERE revoked_ms < ?`, now-revokedKeep.Milliseconds()); err != nil {
		return false, err
	}
	return n > 0, tx.Commit()
}

// RevokedSince returns the hashes (HashToken) of the tokens revoked at or
// after sinceMS, and the newest revocation time among them (sinceMS when
// there is none), for the next call.
func (s *Store) RevokedSince(ctx context.Context, sinceMS int64) ([]string, int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT hash, revoked_ms FROM revoked_tokens WHERE revoked_ms >= ? ORDER BY revoked_ms`, sinceMS)
	if err != nil {
		return nil, sinceMS, fmt.Errorf("store: revocations: %w", err)
	}
	defer rows.Close()
	var out []string
	newest := sinceMS
	for rows.Next() {
		var h string
		var ms int64
		if err := rows.Scan(&h, &ms); err != nil {
			return nil, sinceMS, fmt.Errorf("store: revocations: %w", err)
		}
		out = append(out, h)
		newest = max(newest, ms)
	}
	return out, newest, rows.Err()
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// Authenticate returns the user a token belongs to, or ErrUnauthorized.
func (s *Store) Authenticate(ctx context.Context, token string) (string, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 128 {
		return "", ErrUnauthorized
	}
	var user string
	err := s.db.QueryRowContext(ctx, `SELECT u.name FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?`, HashToken(token)).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrUnauthorized
	}
	if err != nil {
		return "", fmt.Errorf("store: authenticate: %w", err)
	}
	return user, nil
}

// UpsertDevice records a device of user as last seen at seen.
func (s *Store) UpsertDevice(ctx context.Context, user string, d protocol.DeviceInfo, seen time.Time) error {
	d.Online, d.Active, d.LastSeenMS = false, false, 0
	info, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("store: device: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO devices(user_id, id, info, last_seen_ms) SELECT id, ?, ?, ? FROM users WHERE name = ?
		ON CONFLICT(user_id, id) DO UPDATE SET info = excluded.info, last_seen_ms = excluded.last_seen_ms`,
		d.ID, string(info), seen.UnixMilli(), user)
	if err != nil {
		return fmt.Errorf("store: device %s: %w", d.ID, err)
	}
	return nil
}

// Devices lists the registered devices of user, Online and Active false.
func (s *Store) Devices(ctx context.Context, user string) ([]protocol.DeviceInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.info, d.last_seen_ms FROM devices d JOIN users u ON u.id = d.user_id WHERE u.name = ? ORDER BY d.id`, user)
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	defer rows.Close()
	var out []protocol.DeviceInfo
	for rows.Next() {
		var info string
		var seen int64
		if err := rows.Scan(&info, &seen); err != nil {
			return nil, fmt.Errorf("store: devices: %w", err)
		}
		var d protocol.DeviceInfo
		if err := json.Unmarshal([]byte(info), &d); err != nil {
			return nil, fmt.Errorf("store: devices: corrupt row: %w", err)
		}
		d.LastSeenMS = seen
		out = append(out, d)
	}
	return out, rows.Err()
}

// SaveState stores user's active device and player state (nil: none).
func (s *Store) SaveState(ctx context.Context, user, active string, st *protocol.PlayerState) error {
	var js sql.NullString
	if st != nil {
		b, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("store: state: %w", err)
		}
		js = sql.NullString{String: string(b), Valid: true}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO player_state(user_id, active_device, state, updated_ms) SELECT id, ?, ?, ? FROM users WHERE name = ?
		ON CONFLICT(user_id) DO UPDATE SET active_device = excluded.active_device, state = excluded.state, updated_ms = excluded.updated_ms`,
		active, js, time.Now().UnixMilli(), user)
	if err != nil {
		return fmt.Errorf("store: save state: %w", err)
	}
	return nil
}

// LoadState returns user's last active device and player state (nil when
// none was saved).
func (s *Store) LoadState(ctx context.Context, user string) (string, *protocol.PlayerState, error) {
	var active string
	var js sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT p.active_device, p.state FROM player_state p JOIN users u ON u.id = p.user_id WHERE u.name = ?`, user).Scan(&active, &js)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("store: load state: %w", err)
	}
	if !js.Valid {
		return active, nil, nil
	}
	var st protocol.PlayerState
	if err := json.Unmarshal([]byte(js.String), &st); err != nil {
		return "", nil, fmt.Errorf("store: load state: corrupt row: %w", err)
	}
	return active, &st, nil
}
