package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/roomcast/roomcast/discovery"
)

// brokerJSON performs an authenticated request to the broker's HTTP API
// and decodes a JSON answer into out; a refusal becomes a one-line error
// with the broker's code.
func (e *env) brokerJSON(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(e.g.broker, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var ae struct{ Code, Error, Message string }
		_ = json.Unmarshal(data, &ae)
		msg := ae.Error + ae.Message
		if msg == "" {
			msg = strings.TrimSpace(string(data))
		}
		if ae.Code != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, ae.Code, msg)
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, msg)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// cmdPair: roomcast pair ID|NAME [--pin PIN] asks the broker to pair a
// speaker it sees on the LAN with the caller's user.
func cmdPair(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("pair", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	pin := fs.String("pin", "", "the speaker's setup PIN, when it has one")
	// Accept the speaker before or after --pin.
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if target == "" && fs.NArg() == 1 {
		target = fs.Arg(0)
	} else if fs.NArg() > 0 || target == "" {
		return usageError{errors.New("usage: roomcast pair ID|NAME [--pin PIN]")}
	}
	var list struct {
		Speakers []discovery.Speaker `json:"speakers"`
	}
	if err := e.brokerJSON(ctx, "GET", "/v1/speakers", nil, &list); err != nil {
		return err
	}
	id := ""
	var names []string
	for _, s := range list.Speakers {
		switch {
		case s.Info.ID == target:
			id = s.Info.ID
		case strings.EqualFold(s.Name, target):
			names = append(names, s.Info.ID)
		}
	}
	if id == "" {
		switch len(names) {
		case 0:
			return fmt.Errorf("the broker sees no speaker %q on the LAN (see roomcast discover)", target)
		case 1:
			id = names[0]
		default:
			return fmt.Errorf("%d speakers are named %q: use an id (%s)", len(names), target, strings.Join(names, ", "))
		}
	}
	var out struct {
		DeviceID string `json:"device_id"`
		Name     string `json:"name"`
	}
	if err := e.brokerJSON(ctx, "POST", "/v1/pair", discovery.PairRequestBody{DeviceID: id, PIN: *pin}, &out); err != nil {
		return err
	}
	if e.g.json {
		return e.printJSON(out)
	}
	_, err := fmt.Fprintf(e.stdout, "paired %s (%s): it joins this broker now\n", out.Name, out.DeviceID)
	return err
}
