package demo

import (
	"html/template"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
)

// Point is an account balance at a moment, in minor units (cents).
type Point struct {
	At      time.Time
	Balance int64
}

// Chart describes one balance-over-time chart.
type Chart struct {
	// ID makes the chart's element ids unique on the page; letters, digits
	// and '-' only (others are dropped).
	ID       string
	Title    string // e.g. "Balance of Daily spending"
	Currency string
	Points   []Point
	// Compact draws a sparkline without labels, for small boxes.
	Compact bool
}

// geometry is the chart's layout in SVG user units; the SVG scales to its
// box. The full chart has room for labels; the compact one (a sparkline on
// an account card) is all plot.
type geometry struct {
	w, h, left, right, top, bottom int
}

var (
	fullGeometry    = geometry{w: 640, h: 200, left: 104, right: 12, top: 12, bottom: 28}
	compactGeometry = geometry{w: 300, h: 80, left: 0, right: 0, top: 4, bottom: 2}
)

// SVG renders the chart as an inline, accessible SVG: a step line (a
// balance holds until the next booking), the area under it, the zero line
// when the balance crosses zero, and (unless Compact) labels for the range.
// All arithmetic is on integers (money and unix seconds), so the output is
// exact and the same for the same input: no floats, no NaN.
func (c Chart) SVG() template.HTML {
	g := fullGeometry
	class, aspect := "chart", ""
	if c.Compact {
		g, class, aspect = compactGeometry, "chart chart-compact", ` preserveAspectRatio="none"`
	}
	plotW, plotH := g.w-g.left-g.right, g.h-g.top-g.bottom
	id := chartID(c.ID)
	pts := append([]Point(nil), c.Points...)
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].At.Before(pts[j].At) })

	var b strings.Builder
	b.WriteString(`<svg class="` + class + `" viewBox="0 0 ` + itoa(g.w) + ` ` + itoa(g.h) + `"` + aspect + ` role="img" aria-labelledby="` + id + `-t ` + id + `-d" xmlns="http://www.w3.org/2000/svg">`)
	b.WriteString(`<title id="` + id + `-t">` + esc(c.Title) + `</title>`)
	frame := `<rect class="chart-frame" x="` + itoa(g.left) + `" y="` + itoa(g.top) + `" width="` + itoa(plotW) + `" height="` + itoa(plotH) + `"/>`
	if len(pts) == 0 {
		b.WriteString(`<desc id="` + id + `-d">No transactions to chart yet.</desc>` + frame)
		b.WriteString(`<text class="chart-empty" x="` + itoa(g.left+plotW/2) + `" y="` + itoa(g.top+plotH/2+5) + `" text-anchor="middle">No transactions yet</text></svg>`)
		return template.HTML(b.String())
	}

	lo, hi := pts[0].Balance, pts[0].Balance
	for _, p := range pts {
		lo, hi = min(lo, p.Balance), max(hi, p.Balance)
	}
	t0, t1 := pts[0].At.Unix(), pts[len(pts)-1].At.Unix()
	first, last := pts[0], pts[len(pts)-1]

	b.WriteString(`<desc id="` + id + `-d">` + esc(describe(c.Currency, first, last, lo, hi)) + `</desc>` + frame)

	// Coordinates are kept in tenths of a unit and printed with one decimal.
	x := func(t int64) int64 {
		if t1 == t0 {
			return int64(g.left) * 10
		}
		return int64(g.left)*10 + mulDiv(t-t0, int64(plotW)*10, t1-t0)
	}
	y := func(v int64) int64 {
		if hi == lo {
			return int64(g.top+plotH/2) * 10
		}
		return int64(g.top)*10 + mulDiv(hi-v, int64(plotH)*10, hi-lo)
	}
	right := int64(g.left+plotW) * 10

	// The step path: from each point, across to the next point's time,
	// then up or down to its balance; the last balance runs to the edge.
	var line strings.Builder
	line.WriteString("M" + dec(x(t0)) + " " + dec(y(first.Balance)))
	for i := 1; i < len(pts); i++ {
		line.WriteString(" H" + dec(x(pts[i].At.Unix())) + " V" + dec(y(pts[i].Balance)))
	}
	line.WriteString(" H" + dec(right))

	base := int64(g.top+plotH) * 10
	if lo < 0 && hi > 0 {
		base = y(0)
	} else if lo < 0 {
		base = int64(g.top) * 10 // all negative: fill up to the top edge (zero)
	}
	b.WriteString(`<path class="chart-area" d="` + line.String() + ` V` + dec(base) + ` H` + dec(x(t0)) + ` Z"/>`)
	if lo < 0 && hi > 0 {
		z := dec(y(0))
		b.WriteString(`<line class="chart-zero" x1="` + itoa(g.left) + `" y1="` + z + `" x2="` + itoa(g.left+plotW) + `" y2="` + z + `"/>`)
	}
	b.WriteString(`<path class="chart-line" d="` + line.String() + `"/>`)

	if !c.Compact {
		// Labels: highest and lowest balance, first and last date.
		b.WriteString(`<text class="chart-label" x="` + itoa(g.left-6) + `" y="` + itoa(g.top+10) + `" text-anchor="end">` + esc(money(hi, c.Currency)) + `</text>`)
		b.WriteString(`<text class="chart-label" x="` + itoa(g.left-6) + `" y="` + itoa(g.top+plotH) + `" text-anchor="end">` + esc(money(lo, c.Currency)) + `</text>`)
		b.WriteString(`<text class="chart-label" x="` + itoa(g.left) + `" y="` + itoa(g.h-8) + `" text-anchor="start">` + esc(day(first.At)) + `</text>`)
		b.WriteString(`<text class="chart-label" x="` + itoa(g.left+plotW) + `" y="` + itoa(g.h-8) + `" text-anchor="end">` + esc(day(last.At)) + `</text>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func describe(currency string, first, last Point, lo, hi int64) string {
	return "From " + money(first.Balance, currency) + " on " + day(first.At) +
		" to " + money(last.Balance, currency) + " on " + day(last.At) +
		"; lowest " + money(lo, currency) + ", highest " + money(hi, currency) + "."
}

// mulDiv returns a*b/c without overflow for any int64 inputs (c > 0).
func mulDiv(a, b, c int64) int64 {
	var r big.Int
	r.Mul(big.NewInt(a), big.NewInt(b))
	r.Quo(&r, big.NewInt(c))
	return r.Int64()
}

// dec prints tenths as a decimal with one digit: 1234 -> "123.4".
func dec(tenths int64) string {
	sign := ""
	if tenths < 0 {
		sign, tenths = "-", -tenths
	}
	return sign + strconv.FormatInt(tenths/10, 10) + "." + strconv.FormatInt(tenths%10, 10)
}

func itoa(n int) string { return strconv.Itoa(n) }

func esc(s string) string { return template.HTMLEscapeString(s) }

// money shows an amount as the rest of the page does ("€ 12.50").
func money(minor int64, currency string) string {
	return fmtMoney(tpp.FormatMinor(minor), currency)
}

func day(t time.Time) string { return t.UTC().Format("2 Jan 2006") }

func chartID(s string) string {
	var b strings.Builder
	b.WriteString("chart-")
	for _, r := range s {
		if r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// BalanceSeries turns a page of transactions (newest first, as the API
// lists them) and the account's current balance into chart points, oldest
// first. A transaction's balance_after is used when the bank reports it;
// otherwise it is derived by walking back from the current balance. The
// series ends with the current balance at now, so the line reaches today.
func BalanceSeries(txs []Transaction, current Money, now time.Time) ([]Point, error) {
	cur, err := tpp.ParseSignedMinor(current.Amount)
	if err != nil {
		return nil, err
	}
	pts := make([]Point, 0, len(txs)+1)
	running := cur // the balance after the transaction being looked at
	for _, tx := range txs {
		at, err := time.Parse(time.RFC3339, tx.BookedAt)
		if err != nil {
			return nil, err
		}
		amt, err := tpp.ParseSignedMinor(tx.Amount)
		if err != nil {
			return nil, err
		}
		if tx.BalanceAfter != nil {
			if running, err = tpp.ParseSignedMinor(tx.BalanceAfter.Amount); err != nil {
				return nil, err
			}
		}
		pts = append(pts, Point{At: at, Balance: running})
		running -= amt
	}
	for i, j := 0, len(pts)-1; i < j; i, j = i+1, j-1 {
		pts[i], pts[j] = pts[j], pts[i]
	}
	if len(pts) == 0 || now.After(pts[len(pts)-1].At) {
		pts = append(pts, Point{At: now, Balance: cur})
	}
	return pts, nil
}
