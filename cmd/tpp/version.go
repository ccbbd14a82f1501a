package main

import (
	"runtime"
	"runtime/debug"
)

// version describes this build: the module version (a tag when built with
// 'go install …@v1.2.3', "(devel)" in a checkout), the VCS revision and
// whether the tree was modified, and the Go version.
func version() string {
	v, rev, dirty := "(devel)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " " + rev
		if dirty {
			v += "-dirty"
		}
	}
	return v + " " + runtime.Version()
}
