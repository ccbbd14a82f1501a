package psd2

import (
	"context"
	"sync"
	"time"

	"github.com/bunqtpp/tpp"
)

// FairBudget shares a Budget between callers ("shares", such as fintech
// clients) in round robin: per key, one caller at a time waits on the
// underlying budget, and the next turn goes to the next share with
// callers waiting, not to whoever asked first. So a share that sends 30
// calls at once holds back another share's call by about one admission,
// not 30. It matters where many callers use one key: the TPP's own
// installation (single payments) and "- POST /installation".
//
// A caller whose context deadline comes before its estimated turn (the
// callers served before it, at limit per window) is refused at once with
// tpp.EBankBusy and a RetryAfter of that estimate, instead of timing out
// late. The line is per process; replicas share the budget below it.
type FairBudget struct {
	next    Budget
	shareOf func(context.Context) string

	mu    sync.Mutex
	lines map[string]*fairLine
}

type fairLine struct {
	busy    bool                   // a caller is in next.Wait
	waiting map[string][]*fairTurn // FIFO per share
	order   []string               // shares in round-robin order
	last    int                    // index in order of the share served last
}

type fairTurn struct{ ready chan struct{} }

// NewFairBudget returns next shared in round robin between the shares of
// calls: the one set with WithBudgetShare, else what shareOf names for the
// call's context ("" is one share too).
func NewFairBudget(next Budget, shareOf func(context.Context) string) *FairBudget {
	return &FairBudget{next: next, shareOf: shareOf, lines: map[string]*fairLine{}}
}

type budgetShareKey struct{}

// WithBudgetShare names the share (a fintech client id) the bank calls
// made with ctx count for, where shareOf cannot tell: work done for a
// client outside its API request, such as the browser flow of its consent.
func WithBudgetShare(ctx context.Context, share string) context.Context {
	return context.WithValue(ctx, budgetShareKey{}, share)
}

// Wait implements Budget.
func (b *FairBudget) Wait(ctx context.Context, key string, limit int, window time.Duration) error {
	share, ok := ctx.Value(budgetShareKey{}).(string)
	if !ok {
		share = b.shareOf(ctx)
	}
	b.mu.Lock()
	line := b.lines[key]
	if line == nil {
		line = &fairLine{waiting: map[string][]*fairTurn{}, last: -1}
		b.lines[key] = line
	}
	if !line.busy {
		line.busy = true
		b.mu.Unlock()
		return b.admit(ctx, key, limit, window)
	}
	if est := line.estimate(share, limit, window); tooLate(ctx, est) {
		b.mu.Unlock()
		return &tpp.Error{Code: tpp.EBankBusy, Message: "the bank's rate limit is taken up by queued requests; retry after Retry-After seconds", RetryAfter: est}
	}
	turn := &fairTurn{ready: make(chan struct{})}
	if len(line.waiting[share]) == 0 {
		line.order = append(line.order, share)
	}
	line.waiting[share] = append(line.waiting[share], turn)
	b.mu.Unlock()

	select {
	case <-turn.ready:
		return b.admit(ctx, key, limit, window)
	case <-ctx.Done():
		b.mu.Lock()
		removed := line.remove(share, turn)
		b.mu.Unlock()
		if !removed {
			// The turn was handed over meanwhile: pass it on.
			b.release(key)
		}
		return ctx.Err()
	}
}

// admit waits on the underlying budget with the turn, then passes it on.
func (b *FairBudget) admit(ctx context.Context, key string, limit int, window time.Duration) error {
	defer b.release(key)
	return b.next.Wait(ctx, key, limit, window)
}

// release gives the turn to the next share in round robin, or frees the line.
func (b *FairBudget) release(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line := b.lines[key]
	if len(line.order) == 0 {
		delete(b.lines, key)
		return
	}
	i := (line.last + 1) % len(line.order)
	share := line.order[i]
	q := line.waiting[share]
	turn := q[0]
	if len(q) == 1 {
		delete(line.waiting, share)
		line.order = append(line.order[:i], line.order[i+1:]...)
		i-- // the next share now sits at i
	} else {
		line.waiting[share] = q[1:]
	}
	line.last = i
	close(turn.ready)
}

// estimate is how long a new caller of share would wait: the calls served
// before it in round robin (the one waiting now, each other share's
// callers up to its own position, its own share's), at limit per window.
func (l *fairLine) estimate(share string, limit int, window time.Duration) time.Duration {
	pos := len(l.waiting[share])
	ahead := 1 + pos
	for s, q := range l.waiting {
		if s != share {
			ahead += min(len(q), pos+1)
		}
	}
	if limit < 1 {
		return 0
	}
	return time.Duration(ahead/limit) * window
}

func (l *fairLine) remove(share string, turn *fairTurn) bool {
	q := l.waiting[share]
	for i, t := range q {
		if t != turn {
			continue
		}
		q = append(q[:i], q[i+1:]...)
		if len(q) > 0 {
			l.waiting[share] = q
			return true
		}
		delete(l.waiting, share)
		for j, s := range l.order {
			if s == share {
				l.order = append(l.order[:j], l.order[j+1:]...)
				if j <= l.last {
					l.last--
				}
				break
			}
		}
		return true
	}
	return false
}

// tooLate reports whether ctx ends before est from now.
func tooLate(ctx context.Context, est time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ok && est > 0 && time.Until(deadline) < est
}
