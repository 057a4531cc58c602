// Package config gives every roomcast command the same three sources of
// options: command-line flags, ROOMCAST_* environment variables and a TOML
// file, in that order of precedence. Each option is a flag; its
// environment variable is ROOMCAST_ plus the flag name upper-cased with
// dashes as underscores (--state-dir: ROOMCAST_STATE_DIR), and its TOML key
// is the flag name (state-dir = "/var/lib/roomcast"). Values from the
// environment and the file go through the flag's own parser, so they are
// validated exactly like flags.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// MaxFileBytes bounds a config file.
const MaxFileBytes = 1 << 20

// EnvName is the environment variable for a flag name.
func EnvName(flagName string) string {
	return "ROOMCAST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse reads a flat TOML document into option name -> value text.
// Tables, arrays of tables and non-scalar values are rejected.
func Parse(data []byte) (map[string]string, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileBytes)
	}
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d, column %d: %s", row, col, de.Error())
		}
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case int64:
			out[k] = strconv.FormatInt(v, 10)
		case float64:
			out[k] = strconv.FormatFloat(v, 'g', -1, 64)
		case []any:
			parts := make([]string, 0, len(v))
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("option %q: lists may only hold strings", k)
				}
				parts = append(parts, s)
			}
			out[k] = strings.Join(parts, ",")
		default:
			return nil, fmt.Errorf("option %q: unsupported value (use a string, number, boolean or list of strings)", k)
		}
	}
	return out, nil
}

// Apply sets every flag of fs that was not given on the command line from
// the environment, else from the TOML file at path (skipped when path is
// empty, or when it does not exist and optional is true). skip names flags
// that only make sense on a command line (config, version, ...).
func Apply(fs *flag.FlagSet, path string, optional bool, skip ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	var file map[string]string
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist) && optional:
		case err != nil:
			return fmt.Errorf("config: %w", err)
		default:
			if file, err = Parse(data); err != nil {
				return fmt.Errorf("config %s: %w", path, err)
			}
		}
	}
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fs.Lookup(k) == nil || skipped[k] {
			return fmt.Errorf("config %s: unknown option %q", path, k)
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || skipped[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %s = %q: %w", path, f.Name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// DefaultStateDir is $STATE_DIRECTORY (set by systemd's StateDirectory=;
// the first entry when there are several), else $XDG_STATE_HOME/roomcast,
// else ~/.local/state/roomcast.
func DefaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		first, _, _ := strings.Cut(d, ":")
		return first
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "roomcast")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "roomcast")
	}
	return "roomcast-state"
}
