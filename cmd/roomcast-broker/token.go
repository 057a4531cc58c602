package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/roomcast/roomcast/broker/store"
	"github.com/roomcast/roomcast/config"
)

const tokenUsage = `usage:
  roomcast-broker token create [--user NAME] [--label TEXT] [--state-dir DIR]
  roomcast-broker token list [--user NAME] [--json] [--state-dir DIR]
  roomcast-broker token revoke ID|TOKEN [--state-dir DIR]`

// tokenCommand is `roomcast-broker token create|list|revoke`. Each works
// on the database in --state-dir, also while a broker (or roomcastd's
// embedded one) runs on it.
func tokenCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(tokenUsage)}
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("roomcast-broker token "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", config.DefaultStateDir(), "database directory")
	var user, label *string
	var jsonOut *bool
	switch sub {
	case "create":
		user = fs.String("user", "owner", "user the token belongs to (created if new)")
		label = fs.String("label", "", "free text stored with the token")
	case "list":
		user = fs.String("user", "", "only this user's tokens")
		jsonOut = fs.Bool("json", false, "machine-readable output")
	case "revoke":
	default:
		return usageError{fmt.Errorf("unknown token command %q\n%s", sub, tokenUsage)}
	}
	// Flags may follow revoke's argument: parse the rest again after it.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	want := 0
	if sub == "revoke" {
		want = 1
	}
	if len(pos) != want {
		if want == 0 {
			return usageError{fmt.Errorf("token %s: unexpected argument %q", sub, pos[0])}
		}
		return usageError{fmt.Errorf("token revoke: give one token id (from token list) or token\n%s", tokenUsage)}
	}
	if err := config.Apply(fs, "", false); err != nil {
		return usageError{err}
	}
	s, err := store.OpenDir(*stateDir)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	switch sub {
	case "create":
		tok, err := s.CreateToken(ctx, *user, *label)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created a token for user %q in %s\n", *user, *stateDir)
		fmt.Fprintln(stdout, tok)
		return nil
	case "list":
		toks, err := s.Tokens(ctx, *user)
		if err != nil {
			return err
		}
		if *jsonOut {
			if toks == nil {
				toks = []store.TokenInfo{}
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				Tokens []store.TokenInfo `json:"tokens"`
			}{toks})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tCREATED\tLABEL")
		for _, ti := range toks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ti.ID, ti.User, time.UnixMilli(ti.CreatedMS).Format(time.DateTime), ti.Label)
		}
		return tw.Flush()
	}
	ti, err := s.RevokeToken(ctx, pos[0])
	if err != nil {
		if errors.Is(err, store.ErrNoSuchToken) {
			return fmt.Errorf("token revoke: %w", err)
		}
		return usageError{err}
	}
	fmt.Fprintf(stdout, "revoked token %s of user %q (%s); a running broker closes its connections within a few seconds\n", ti.ID, ti.User, ti.Label)
	return nil
}
