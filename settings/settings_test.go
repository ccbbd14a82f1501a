package settings

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFlagsWinOverEnvironmentOverDefaults(t *testing.T) {
	t.Parallel()
	var a, b, c string
	var d time.Duration
	var on bool
	list := []Setting{
		{Flag: "a", Env: "A", Default: "def", Str: &a},
		{Flag: "b", Env: "B", Default: "def", Str: &b},
		{Flag: "c", Env: "C", Default: "def", Str: &c},
		{Flag: "d", Env: "D", Default: "1s", Dur: &d},
		{Flag: "on", Env: "ON", Default: "false", Bool: &on},
	}
	env := map[string]string{"B": "env", "C": "env", "D": "2m"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	if err := Parse(fs, list, []string{"--c", " flag ", "--on"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if a != "def" || b != "env" || c != "flag" || d != 2*time.Minute || !on {
		t.Fatalf("a=%q b=%q c=%q d=%s on=%v", a, b, c, d, on)
	}
	env["D"] = "soon"
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := Parse(fs, list, nil, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "--d ($D)") {
		t.Fatalf("a bad duration from the environment: %v, want the setting named", err)
	}
}

func TestURLPasswordMasksUserInfoAndQuery(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://u:secret@h:6379/0":                "redis://u:****@h:6379/0",
		"redis://h:26379?password=secret&master=m": "redis://h:26379?master=m&password=****",
		"postgres://u@h/db?sslmode=disable":        "postgres://u@h/db?sslmode=disable",
		"redis://u:pa#ss@h":                        "****",
		"data/tpp.db":                              "data/tpp.db",
	} {
		if got := URLPassword(in); got != want {
			t.Errorf("URLPassword(%q) = %q, want %q", in, got, want)
		}
	}
	s := Setting{Flag: "p", Str: new(string), Mask: Secret}
	if s.Shown() != "" {
		t.Errorf("an empty secret shows as %q, want empty", s.Shown())
	}
	*s.Str = "x"
	if s.Shown() != "****" {
		t.Errorf("a secret shows as %q", s.Shown())
	}
}

func TestListDropsBlanks(t *testing.T) {
	got := List(" 10.0.0.1, ,10.0.0.2,")
	if len(got) != 2 || got[0] != "10.0.0.1" || got[1] != "10.0.0.2" {
		t.Fatalf("List = %q", got)
	}
	if List("") != nil {
		t.Fatal("List of empty is not empty")
	}
}
