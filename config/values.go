package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// UsageError marks bad input (an option, an argument, a config file): the
// command prints it on one line and exits 2. Anything else is a runtime
// failure (exit 1). Commands have their own such types; any error with a
// Usage method counts (IsUsage).
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the error inside.
func (e UsageError) Unwrap() error { return e.Err }

// Usage marks the error as bad input.
func (UsageError) Usage() {}

// IsUsage reports whether err, or an error it wraps, marks bad input: it
// has a method Usage().
func IsUsage(err error) bool {
	var u interface{ Usage() }
	return errors.As(err, &u)
}

// ParseArgs is fs.Parse without the flag package's own output: a bad flag
// comes back as a UsageError whose one line the caller prints (no usage
// dump after it), and -h or --help prints fs.Usage to fs.Output and
// returns flag.ErrHelp.
func ParseArgs(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		if usage != nil {
			usage()
		} else {
			fs.PrintDefaults()
		}
		return err
	case err != nil:
		return UsageError{err}
	}
	return nil
}

// ParseFloat parses a decimal number and refuses NaN and ±Inf (which
// strconv.ParseFloat accepts as "NaN", "inf", "infinity").
func ParseFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, errors.New("out of range")
		}
		return 0, errors.New("not a number")
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, errors.New("not a finite number")
	}
	return v, nil
}

// finiteFloat is a float64 flag that only holds finite values.
type finiteFloat float64

func (f *finiteFloat) String() string { return strconv.FormatFloat(float64(*f), 'g', -1, 64) }

func (f *finiteFloat) Set(s string) error {
	v, err := ParseFloat(s)
	if err != nil {
		return err
	}
	*f = finiteFloat(v)
	return nil
}

// FloatVar defines a float64 flag like fs.Float64Var that refuses NaN and
// ±Inf from the command line, the environment and the config file alike
// (Apply sets every source through the flag). Name the value's unit in
// `backquotes` in usage for --help.
func FloatVar(fs *flag.FlagSet, p *float64, name string, value float64, usage string) {
	*p = value
	fs.Var((*finiteFloat)(p), name, usage)
}

// CheckURL checks that s is an absolute URL with one of schemes (lower
// case), a host, a valid port if any, and no credentials, query or
// fragment: the base URL of a roomcast broker.
func CheckURL(s string, schemes ...string) error {
	want := strings.Join(schemes, ", ")
	if i := strings.LastIndex(want, ", "); i >= 0 {
		want = want[:i] + " or " + want[i+2:]
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a URL: %v", err)
	}
	switch {
	case u.Scheme == "":
		return fmt.Errorf("no scheme: want %s://HOST:PORT", schemes[0])
	case !slices.Contains(schemes, strings.ToLower(u.Scheme)):
		return fmt.Errorf("scheme %q: want %s", u.Scheme, want)
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("no host: want %s://HOST:PORT", u.Scheme)
	case u.User != nil:
		return errors.New("credentials in the URL: give the token separately")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("a base URL has no query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1-65535", p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return errors.New("empty port")
	}
	return nil
}

// urlValue is a string flag that holds "" or a URL CheckURL accepts.
type urlValue struct {
	p       *string
	schemes []string
}

func (v urlValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v urlValue) Set(s string) error {
	if s != "" {
		if err := CheckURL(s, v.schemes...); err != nil {
			return err
		}
	}
	*v.p = s
	return nil
}

// URLVar defines a string flag holding a broker URL: empty, or a URL that
// CheckURL(schemes...) accepts, from every source alike. The default value
// is not checked.
func URLVar(fs *flag.FlagSet, p *string, name, value, usage string, schemes ...string) {
	if len(schemes) == 0 {
		panic("config.URLVar: no schemes")
	}
	*p = value
	fs.Var(urlValue{p, schemes}, name, usage)
}
