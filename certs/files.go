package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FileNames are the names WriteFiles uses inside its folder. Empty fields
// take the defaults ca.pem, cert.pem, key.pem and chain.pem.
type FileNames struct {
	CA, Cert, Key, Chain string
}

func (n FileNames) withDefaults() FileNames {
	def := func(s, d string) string {
		if s == "" {
			return d
		}
		return s
	}
	return FileNames{def(n.CA, "ca.pem"), def(n.Cert, "cert.pem"), def(n.Key, "key.pem"), def(n.Chain, "chain.pem")}
}

// ErrExists is returned by WriteFiles when a file is already there and
// overwriting was not asked for.
var ErrExists = errors.New("file exists")

// Written lists the paths WriteFiles wrote.
type Written struct {
	CA, Cert, Key, Chain string
}

// WriteFiles writes the CA, certificate, key and chain into dir, creating
// dir with mode 0700 if needed. The key gets mode 0600 and the certificates
// 0644. Unless overwrite is set it refuses, before writing anything, when any
// of the files exists. Each file is written to a temporary file and renamed,
// so a reader never sees half a key and an old file's mode is not inherited.
func (g *Generated) WriteFiles(dir string, names FileNames, overwrite bool) (Written, error) {
	n := names.withDefaults()
	var w Written
	files := []struct {
		name string
		data []byte
		mode fs.FileMode
		out  *string
	}{
		{n.CA, g.CAPEM, 0o644, &w.CA},
		{n.Cert, g.CertPEM, 0o644, &w.Cert},
		{n.Key, g.KeyPEM, 0o600, &w.Key},
		{n.Chain, g.ChainPEM, 0o644, &w.Chain},
	}
	seen := map[string]bool{}
	for _, f := range files {
		if f.name != filepath.Base(f.name) || f.name == "." || f.name == ".." {
			return Written{}, fmt.Errorf("certs: file name %q must be a plain name without a folder", f.name)
		}
		if seen[f.name] {
			return Written{}, fmt.Errorf("certs: file name %q is used twice", f.name)
		}
		seen[f.name] = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Written{}, fmt.Errorf("certs: create folder: %w", err)
	}
	if !overwrite {
		for _, f := range files {
			p := filepath.Join(dir, f.name)
			if _, err := os.Lstat(p); err == nil {
				return Written{}, fmt.Errorf("certs: %s: %w; pass --force to overwrite it", p, ErrExists)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return Written{}, fmt.Errorf("certs: %w", err)
			}
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeAtomic(p, f.data, f.mode); err != nil {
			return Written{}, err
		}
		*f.out = p
	}
	return w, nil
}

func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	// CreateTemp makes the file 0600, so the key is never readable by others,
	// not even for a moment; certificates are opened up afterwards.
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: chmod %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certs: close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
