package sqlite

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// timeLayout is how times are stored: UTC, fixed width, so that text order
// is time order and cursors can compare (created_at, id) as strings.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: bad stored time %q: %w", s, err)
	}
	return t, nil
}

// dbTime is a time column. It writes timeLayout and reads it back.
type dbTime struct{ time.Time }

func (t dbTime) Value() (driver.Value, error) { return formatTime(t.Time), nil }

func (t *dbTime) Scan(v any) error {
	switch v := v.(type) {
	case string:
		p, err := parseTime(v)
		t.Time = p
		return err
	case []byte:
		p, err := parseTime(string(v))
		t.Time = p
		return err
	}
	return fmt.Errorf("sqlite: cannot scan %T into a time", v)
}

// nullTime is a nullable time column; the zero time is NULL.
type nullTime struct{ time.Time }

func (t nullTime) Value() (driver.Value, error) {
	if t.IsZero() {
		return nil, nil
	}
	return formatTime(t.Time), nil
}

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

func nullOf(p *time.Time) nullTime {
	if p == nil {
		return nullTime{}
	}
	return nullTime{*p}
}
