package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bunqtpp/tpp"
)

// ConsentCounter counts consents by status. The metrics read it at each
// scrape.
type ConsentCounter interface {
	CountConsentsByStatus(ctx context.Context) (map[string]int, error)
}

// DefaultConsentTimeout bounds one count at scrape time.
const DefaultConsentTimeout = 2 * time.Second

// consentStatuses are always reported, at zero when no consent has them,
// so a status that empties does not vanish from dashboards.
var consentStatuses = []tpp.ConsentStatus{
	tpp.ConsentPending, tpp.ConsentActive, tpp.ConsentRejected,
	tpp.ConsentExpired, tpp.ConsentRevoked, tpp.ConsentReauthRequired,
}

// WatchConsents adds the gauge tpp_consents{status}, counted by c at each
// scrape within timeout (DefaultConsentTimeout when <= 0). It fails if
// consents are already watched.
func (m *Metrics) WatchConsents(c ConsentCounter, timeout time.Duration) error {
	if c == nil {
		return fmt.Errorf("metrics: nil consent counter")
	}
	if timeout <= 0 {
		timeout = DefaultConsentTimeout
	}
	col := &consentCollector{counter: c, timeout: timeout, desc: prometheus.NewDesc(
		"tpp_consents", "Consents by status, counted at scrape time.", []string{"status"}, nil)}
	if err := m.reg.Register(col); err != nil {
		return fmt.Errorf("metrics: watch consents: %w", err)
	}
	return nil
}

type consentCollector struct {
	counter ConsentCounter
	timeout time.Duration
	desc    *prometheus.Desc
}

func (c *consentCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *consentCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.counter.CountConsentsByStatus(ctx)
	if err != nil {
		// The handler leaves the gauge out and serves everything else; a
		// zero would claim there are no consents.
		ch <- prometheus.NewInvalidMetric(c.desc, fmt.Errorf("count consents: %w", err))
		return
	}
	for _, s := range consentStatuses {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[string(s)]), string(s))
	}
	for s, n := range counts {
		// The table's CHECK constraint bounds statuses; a new one shows up
		// here before consentStatuses learns it.
		if !tpp.ConsentStatus(s).Valid() {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), s)
		}
	}
}

// SQLConsents counts consents with one GROUP BY over the consents table of
// package sqlite (pass sqlite.DB's embedded *sqlx.DB).
type SQLConsents struct {
	DB *sqlx.DB
}

// CountConsentsByStatus implements ConsentCounter.
func (s SQLConsents) CountConsentsByStatus(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	if err := s.DB.SelectContext(ctx, &rows, `SELECT status, COUNT(*) AS n FROM consents GROUP BY status`); err != nil {
		return nil, fmt.Errorf("metrics: count consents by status: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}
