package registration

import (
	"testing"

	"github.com/bunqtpp/tpp/psd2"
)

func TestResolveEnv(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"sandbox":                   psd2.Sandbox.APIBaseURL,
		"production":                psd2.Production.APIBaseURL,
		"http://127.0.0.1:5000":     "http://127.0.0.1:5000",
		"http://127.0.0.1:5000/v1/": "http://127.0.0.1:5000",
		"https://api.example.com/":  "https://api.example.com",
	} {
		got, err := ResolveEnv(in)
		if err != nil || got != want {
			t.Errorf("ResolveEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
