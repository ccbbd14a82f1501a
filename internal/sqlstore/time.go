package sqlstore

import (
	"bytes"
	"fmt"
	"time"
)

// TextTimeLayout is how SQLite stores times: UTC, fixed width, so that
// text order is time order and cursors can compare (created_at, id) as
// strings.
const TextTimeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTextTime is t as TextTimeLayout.
func FormatTextTime(t time.Time) string { return t.UTC().Format(TextTimeLayout) }

func parseTextTime(s string) (time.Time, error) {
	t, err := time.Parse(TextTimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad stored time %q: %w", s, err)
	}
	return t, nil
}

// dbTime is a time column read back in UTC, whether the database keeps
// it as TextTimeLayout text (SQLite) or as timestamptz (PostgreSQL).
// Writes go through Store.Time.
type dbTime struct{ time.Time }

func (t *dbTime) Scan(v any) error {
	var err error
	switch v := v.(type) {
	case time.Time:
		t.Time = v.UTC()
	case string:
		t.Time, err = parseTextTime(v)
	case []byte:
		t.Time, err = parseTextTime(string(v))
	default:
		return fmt.Errorf("cannot scan %T into a time", v)
	}
	return err
}

// nullTime is a nullable time column; NULL reads as the zero time.
type nullTime struct{ time.Time }

func (t *nullTime) Scan(v any) error {
	if v == nil {
		t.Time = time.Time{}
		return nil
	}
	var d dbTime
	err := d.Scan(v)
	t.Time = d.Time
	return err
}

// ptr returns the time as a pointer, nil when unset, for optional domain fields.
func (t nullTime) ptr() *time.Time {
	if t.IsZero() {
		return nil
	}
	tt := t.Time
	return &tt
}

// sealedCol is a column of seal.Keyring output as the database keeps it
// (Dialect.EncodeSealed); Valid is false for NULL.
type sealedCol struct {
	Stored []byte
	Valid  bool
}

func (c *sealedCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c = sealedCol{}
	case string:
		*c = sealedCol{Stored: []byte(v), Valid: true}
	case []byte:
		*c = sealedCol{Stored: bytes.Clone(v), Valid: true}
	default:
		return fmt.Errorf("cannot scan %T into a sealed value", v)
	}
	return nil
}
