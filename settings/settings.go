// Package settings reads a command's settings, each a flag with an
// environment variable and a default: flags win over the environment, the
// environment over defaults. Values are checked after parsing, so a bad
// value from the environment gets the same error as one from a flag, and
// errors name the flag and the variable. It also masks secrets for
// printing the effective configuration.
package settings

import (
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Setting is one value and where it comes from. Exactly one of Str, Dur,
// Int and Bool points at where the value goes.
type Setting struct {
	Flag, Env, Default, Usage string
	Str                       *string
	Dur                       *time.Duration // at least 0
	Int                       *int           // at least 1
	Bool                      *bool
	// Mask shows the value when printed; nil shows it as it is.
	Mask func(string) string
}

// Parse registers list on fs, parses args and fills every setting from its
// default, then getenv, then args.
func Parse(fs *flag.FlagSet, list []Setting, args []string, getenv func(string) string) error {
	raw := map[string]*string{}
	for _, s := range list {
		v := s.Default
		if e := getenv(s.Env); e != "" {
			v = e
		}
		val := v
		raw[s.Flag] = &val
		if s.Bool != nil {
			// A plain --sign-all means true, as with any boolean flag;
			// --sign-all=false turns it off again.
			fs.Var(boolFlag{&val}, s.Flag, s.Usage+" ($"+s.Env+")")
			continue
		}
		fs.StringVar(raw[s.Flag], s.Flag, v, s.Usage+" ($"+s.Env+")")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range list {
		if err := s.set(strings.TrimSpace(*raw[s.Flag])); err != nil {
			return err
		}
	}
	return nil
}

func (s Setting) set(v string) error {
	switch {
	case s.Str != nil:
		*s.Str = v
	case s.Dur != nil:
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("setting --%s ($%s) = %q is not a duration such as 30s or 5m", s.Flag, s.Env, v)
		}
		*s.Dur = d
	case s.Int != nil:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("setting --%s ($%s) = %q must be a whole number of at least 1", s.Flag, s.Env, v)
		}
		*s.Int = n
	case s.Bool != nil:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("setting --%s ($%s) = %q must be true or false", s.Flag, s.Env, v)
		}
		*s.Bool = b
	}
	return nil
}

// Value is the setting's value as text.
func (s Setting) Value() string {
	switch {
	case s.Str != nil:
		return *s.Str
	case s.Dur != nil:
		return s.Dur.String()
	case s.Int != nil:
		return strconv.Itoa(*s.Int)
	case s.Bool != nil:
		return strconv.FormatBool(*s.Bool)
	}
	return ""
}

// Shown is the value as it may be printed: masked, and empty as empty.
func (s Setting) Shown() string {
	v := s.Value()
	if v == "" || s.Mask == nil {
		return v
	}
	return s.Mask(v)
}

// boolFlag is a boolean flag kept as text until Parse checks it.
type boolFlag struct{ v *string }

func (b boolFlag) String() string {
	if b.v == nil {
		return ""
	}
	return *b.v
}
func (b boolFlag) Set(s string) error { *b.v = s; return nil }
func (b boolFlag) IsBoolFlag() bool   { return true }

// Secret hides a value entirely. Each mask is final: a secret is never
// parsed as something else (a password holding ':' or ',' is not a key
// list, nor a URL).
func Secret(string) string { return "****" }

// URLPassword masks a password in a URL's user info and in its query
// (Sentinel URLs carry the Redis password as password=...). A value that
// does not parse, or parses with a fragment (a password holding an
// unescaped '#' splits there), prints as "****".
func URLPassword(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Fragment != "" || strings.Contains(v, "#") {
		return "****"
	}
	if q := u.Query(); q.Has("password") || q.Has("sentinel_password") {
		for _, k := range []string{"password", "sentinel_password"} {
			if q.Has(k) {
				q.Set(k, "MASKED")
			}
		}
		u.RawQuery = q.Encode()
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "MASKED")
		}
	}
	return strings.ReplaceAll(strings.ReplaceAll(u.String(), ":MASKED@", ":****@"), "=MASKED", "=****")
}

// List splits a comma-separated setting, dropping blanks.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
