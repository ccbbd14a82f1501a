package aisp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/psd2"
)

// Transaction is a booked payment as the API shows it.
type Transaction struct {
	ID           string       `json:"id"` // tpp.TransactionID
	BookedAt     string       `json:"booked_at"`
	Amount       tpp.Money    `json:"amount"` // negative for money going out
	Counterparty Counterparty `json:"counterparty"`
	Description  string       `json:"description"`
	Type         string       `json:"type"`
	BalanceAfter *tpp.Money   `json:"balance_after"`
}

// Counterparty is the other side of a transaction. IBAN is nil when the
// bank reports none.
type Counterparty struct {
	IBAN *string `json:"iban"`
	Name string  `json:"name"`
}

// TransactionPage is one page of transactions, newest first. NextCursor is
// nil on the last page.
type TransactionPage struct {
	Data       []Transaction `json:"data"`
	NextCursor *string       `json:"next_cursor"`
}

// Transaction page sizes.
const (
	DefaultTxLimit = 50
	MaxTxLimit     = 200
	bankMaxCount   = 200 // bunq's largest page
)

// TxQuery selects transactions: booking time within [From, To] (zero
// means unbounded), Limit per page, and the Cursor of the previous page.
type TxQuery struct {
	From, To time.Time
	Limit    int
	Cursor   string
}

// ParseTxQuery parses the query parameters of the transactions list. Empty
// strings mean absent; the handler refuses present-but-empty ones.
func ParseTxQuery(from, to, limit, cursor string) (TxQuery, error) {
	q := TxQuery{Limit: DefaultTxLimit, Cursor: cursor}
	var err error
	if from != "" {
		if q.From, err = parseBound("from", from); err != nil {
			return TxQuery{}, err
		}
	}
	if to != "" {
		if q.To, err = parseBound("to", to); err != nil {
			return TxQuery{}, err
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return TxQuery{}, tpp.Errorf(tpp.EInvalid, "from (%s) is after to (%s)", from, to)
	}
	if q.Limit, err = tpp.ParseLimit(limit, DefaultTxLimit, MaxTxLimit); err != nil {
		return TxQuery{}, err
	}
	if len(cursor) > 512 {
		return TxQuery{}, tpp.Errorf(tpp.EInvalidCursor, "cursor is not one this API returned")
	}
	return q, nil
}

// parseBound reads an RFC 3339 date (midnight UTC) or date-time.
func parseBound(name, s string) (time.Time, error) {
	if len(s) == len("2006-01-02") {
		if t, err := time.Parse("2006-01-02", s); err == nil {
			return t, nil
		}
	} else if strings.Contains(s, "T") {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, tpp.Errorf(tpp.EInvalid, "%s must be an RFC 3339 date (2026-11-01) or date-time (2026-11-01T08:00:00Z), got %q", name, truncate(s, 40))
}

// Transactions returns one page of an account's transactions, newest first.
//
// bunq pages by id only (older_id), newest first, and has no date filter:
// the page is read from the cursor's position (or the newest payment),
// items booked after To are skipped, and reading stops shortly after the
// first one booked before From (edgeLookahead). The cursor holds the bunq id of the position, so a
// payment arriving while the client pages does not shift the pages after
// it; it is bound to the consent, account and filter by an HMAC.
func (s *Service) Transactions(ctx context.Context, r Request, accountID string, q TxQuery) (TransactionPage, Access, error) {
	var (
		id  int64
		pos cursorData
	)
	c, acc, err := s.open(ctx, r, func(c *tpp.Consent) (err error) {
		if id, err = tpp.ParseAccountID(accountID); err != nil {
			return err
		}
		pos = cursorData{V: 1, Consent: c.ID, Account: id, From: timeKey(q.From), To: timeKey(q.To)}
		if q.Cursor == "" {
			return nil
		}
		cur, err := s.cursors.decode(q.Cursor)
		if err != nil {
			return err
		}
		if cur.Consent != c.ID || cur.Account != id || cur.Older <= 0 {
			return errBadCursor()
		}
		// The filter belongs to the cursor: a page may repeat it or leave
		// it out, not change it.
		if (!q.From.IsZero() && cur.From != pos.From) || (!q.To.IsZero() && cur.To != pos.To) {
			return tpp.Errorf(tpp.EInvalidCursor, "the cursor belongs to another from/to filter; repeat the filter or leave it out")
		}
		pos = cur
		return nil
	})
	if err != nil {
		return TransactionPage{}, acc, err
	}
	from, to, err := pos.bounds()
	if err != nil {
		return TransactionPage{}, acc, err
	}
	// ".v2": the answer's shape changed (money objects, txn_ ids); older cached
	// answers of a rolling upgrade are not read as the new one.
	key := fmt.Sprintf("tx.v2:%d:%d:%s:%s:%d", id, pos.Older, pos.From, pos.To, q.Limit)
	b, err := s.cached(ctx, c, r.Fresh, key, func(ctx context.Context, bc *psd2.Context) (any, error) {
		return s.scan(ctx, c, bc, accountID, id, pos, from, to, q.Limit)
	})
	if err != nil {
		return TransactionPage{}, acc, err
	}
	var page TransactionPage
	if err := json.Unmarshal(b, &page); err != nil {
		return TransactionPage{}, acc, fmt.Errorf("aisp: cached transactions: %w", err)
	}
	return page, acc, nil
}

// edgeLookahead and edgeDisorder bound the look past the first item booked
// before from: at most edgeLookahead such items, none more than
// edgeDisorder before from, so a payment with a higher id but an earlier
// time (booked out of order) does not hide older ones that are in range.
const (
	edgeLookahead = 10
	edgeDisorder  = 5 * time.Minute
)

// scan reads bank pages from pos until it has limit items (plus one, to
// know whether another page exists), the history ends, or it passes from.
func (s *Service) scan(ctx context.Context, c *tpp.Consent, bc *psd2.Context, accountID string, id int64, pos cursorData, from, to time.Time, limit int) (TransactionPage, error) {
	want := limit + 1
	got := make([]Transaction, 0, want)
	gotIDs := make([]int64, 0, want)
	older := pos.Older
	scanned := older
	done := false
	beyond := 0 // items read that were booked before from
	for range maxPages {
		count := min(bankMaxCount, want-len(got))
		if !to.IsZero() && len(got) == 0 {
			// Until the first item within "to" shows up, everything read
			// is skipped: read big pages.
			count = bankMaxCount
		}
		l, err := s.bank.ListPayments(ctx, bc, id, psd2.Page{Count: count, OlderID: older})
		if err != nil {
			return TransactionPage{}, s.accountError(ctx, c, accountID, err)
		}
		for i := range l.Items {
			p := &l.Items[i]
			if older > 0 && p.ID >= older {
				continue // never repeat what an earlier page held
			}
			scanned = p.ID
			at := bookedAt(p)
			if !to.IsZero() && at.After(to) {
				continue
			}
			if !from.IsZero() && at.Before(from) {
				// bunq's ids and booking times need not agree to the
				// second: look a little further before stopping.
				beyond++
				if beyond > edgeLookahead || at.Before(from.Add(-edgeDisorder)) {
					done = true
					break
				}
				continue
			}
			got = append(got, transactionView(p))
			gotIDs = append(gotIDs, p.ID)
			if len(got) == want {
				break
			}
		}
		if done || len(got) == want {
			break
		}
		next, more := olderPage(l.Pagination, len(l.Items))
		if !more || (older > 0 && next >= older) {
			done = true
			break
		}
		older = next
	}
	page := TransactionPage{Data: got}
	var next cursorData
	switch {
	case len(got) == want:
		page.Data = got[:limit]
		next = pos
		next.Older = gotIDs[limit-1]
	case !done && scanned > 0:
		// The page budget ran out before the page filled: continue from
		// where the scan stopped.
		next = pos
		next.Older = scanned
	default:
		return page, nil
	}
	tok, err := s.cursors.encode(next)
	if err != nil {
		return TransactionPage{}, err
	}
	page.NextCursor = &tok
	return page, nil
}

// bookedAt is the booking time as the API shows it (whole seconds, UTC);
// the from/to filter compares the same value the client sees.
func bookedAt(p *psd2.Payment) time.Time { return p.Created.Time.UTC().Truncate(time.Second) }

func transactionView(p *psd2.Payment) Transaction {
	amt := money(p.Amount, "")
	t := Transaction{
		ID:          tpp.TransactionID(p.ID),
		BookedAt:    bookedAt(p).Format(time.RFC3339),
		Amount:      amt,
		Description: p.Description,
		Type:        p.Type,
	}
	cp := p.CounterpartyAlias
	if iban, err := tpp.NormalizeIBAN(cp.IBAN); err == nil {
		t.Counterparty.IBAN = &iban
	}
	t.Counterparty.Name = cp.DisplayName
	if t.Counterparty.Name == "" && cp.LabelUser != nil {
		t.Counterparty.Name = cp.LabelUser.DisplayName
	}
	if b := p.BalanceAfterMutation; b != nil && b.Value != "" {
		m := money(*b, amt.Currency)
		t.BalanceAfter = &m
	}
	return t
}

// ---- cursors

func errBadCursor() error {
	return tpp.Errorf(tpp.EInvalidCursor, "the cursor is not one this API returned for this list")
}

// cursorData is a position in one account's transactions under one filter.
type cursorData struct {
	V       int    `json:"v"`
	Consent string `json:"c"`
	Account int64  `json:"a"`
	Older   int64  `json:"o"`           // bunq payment id: the next page holds older ids
	From    string `json:"f,omitempty"` // RFC 3339 UTC, "" for none
	To      string `json:"t,omitempty"`
}

func timeKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (d cursorData) bounds() (from, to time.Time, err error) {
	if d.From != "" {
		if from, err = time.Parse(time.RFC3339Nano, d.From); err != nil {
			return time.Time{}, time.Time{}, errBadCursor()
		}
	}
	if d.To != "" {
		if to, err = time.Parse(time.RFC3339Nano, d.To); err != nil {
			return time.Time{}, time.Time{}, errBadCursor()
		}
	}
	return from, to, nil
}

// cursorCodec makes cursors "<payload>.<mac>", both base64url: the payload
// is JSON, the MAC a truncated HMAC-SHA256 of it.
type cursorCodec struct{ key []byte }

const cursorMACLen = 16

func newCursorCodec(key []byte) (cursorCodec, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return cursorCodec{}, fmt.Errorf("aisp: cursor key: %w", err)
		}
	} else if len(key) < 32 {
		return cursorCodec{}, errors.New("aisp: cursor key must be at least 32 bytes")
	}
	return cursorCodec{key: append([]byte(nil), key...)}, nil
}

func (k cursorCodec) mac(payload string) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte("aisp-cursor:"))
	m.Write([]byte(payload))
	return m.Sum(nil)[:cursorMACLen]
}

func (k cursorCodec) encode(d cursorData) (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(k.mac(p)), nil
}

func (k cursorCodec) decode(s string) (cursorData, error) {
	p, m, ok := strings.Cut(s, ".")
	if !ok {
		return cursorData{}, errBadCursor()
	}
	mac, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil || !hmac.Equal(mac, k.mac(p)) {
		return cursorData{}, errBadCursor()
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return cursorData{}, errBadCursor()
	}
	var d cursorData
	if err := json.Unmarshal(raw, &d); err != nil || d.V != 1 {
		return cursorData{}, errBadCursor()
	}
	return d, nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
