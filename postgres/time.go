package postgres

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// formatTime is the value a time is written as: UTC, for timestamptz.
func formatTime(t time.Time) time.Time { return t.UTC() }

// dbTime is a timestamptz column read back in UTC.
type dbTime struct{ time.Time }

func (t dbTime) Value() (driver.Value, error) { return t.UTC(), nil }

func (t *dbTime) Scan(v any) error {
	tt, ok := v.(time.Time)
	if !ok {
		return fmt.Errorf("postgres: cannot scan %T into a time", v)
	}
	t.Time = tt.UTC()
	return nil
}

// nullTime is a nullable time column; the zero time is NULL.
type nullTime struct{ time.Time }

func (t nullTime) Value() (driver.Value, error) {
	if t.IsZero() {
		return nil, nil
	}
	return t.UTC(), nil
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
