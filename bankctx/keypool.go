package bankctx

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
)

// KeyBits is the size of installation keys bunq requires.
const KeyBits = 2048

// KeyPool hands out pre-generated RSA-2048 keys so that key generation
// (tens of milliseconds of CPU) is not on the request path. Run refills it
// in the background; it holds at most its size, and each key is handed out
// once.
type KeyPool struct {
	keys    chan *rsa.PrivateKey
	workers int
	bits    int

	mu      sync.Mutex
	running bool
}

// NewKeyPool returns an empty pool of size keys (≥ 1) refilled by workers
// goroutines (≥ 1) once Run is called.
func NewKeyPool(size, workers int) *KeyPool {
	return &KeyPool{keys: make(chan *rsa.PrivateKey, max(size, 1)), workers: max(workers, 1), bits: KeyBits}
}

// Run fills the pool and keeps it full until ctx ends. It returns when every
// worker has stopped. Calling Run twice at once is an error.
func (p *KeyPool) Run(ctx context.Context) error {
	if err := p.begin(); err != nil {
		return err
	}
	return p.loop(ctx)
}

// Start runs the pool in a goroutine until ctx ends. The pool counts as
// running from the moment Start returns, so Get waits for keys.
func (p *KeyPool) Start(ctx context.Context) {
	if p.begin() != nil {
		return // already running
	}
	go func() { _ = p.loop(ctx) }()
}

func (p *KeyPool) begin() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return errors.New("bankctx: key pool already running")
	}
	p.running = true
	return nil
}

func (p *KeyPool) loop(ctx context.Context) error {
	defer func() {
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
	}()
	var wg sync.WaitGroup
	errs := make(chan error, p.workers)
	for range p.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				k, err := rsa.GenerateKey(rand.Reader, p.bits)
				if err != nil {
					errs <- fmt.Errorf("bankctx: generate RSA key: %w", err)
					return
				}
				select {
				case p.keys <- k:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// ErrPoolStopped is returned by Get when the pool is empty and nothing
// refills it (Run was never started, or has stopped).
var ErrPoolStopped = errors.New("bankctx: RSA key pool is empty and not running")

// Get returns a key, waiting for the refill when the pool is empty, until
// ctx ends.
func (p *KeyPool) Get(ctx context.Context) (*rsa.PrivateKey, error) {
	select {
	case k := <-p.keys:
		return k, nil
	default:
	}
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	if !running {
		return nil, ErrPoolStopped
	}
	select {
	case k := <-p.keys:
		return k, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("bankctx: waiting for an RSA key: %w", ctx.Err())
	}
}

// Len reports how many keys are ready.
func (p *KeyPool) Len() int { return len(p.keys) }

// Cap reports the pool's size.
func (p *KeyPool) Cap() int { return cap(p.keys) }
