// Package server runs a service's HTTP listeners and background workers
// until its context ends, then shuts down in order: the HTTP server drains
// the requests in flight (up to a grace period) before the workers stop,
// so nothing a request started is cut off.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config is what Run runs.
type Config struct {
	Handler  http.Handler
	Listener net.Listener // the public listener, already open
	// MetricsListen, when set, serves Metrics at GET /metrics there.
	MetricsListen string
	Metrics       http.Handler
	// Workers run from before the listener serves until the server has
	// drained; Start, when set, is called first with their context (for
	// components that start their own goroutines).
	Workers []func(context.Context) error
	Start   func(context.Context)
	// Grace bounds the drain at shutdown.
	Grace time.Duration
	Log   *slog.Logger
	// Out gets the operator's progress lines ("tpp: listening on ...").
	Out io.Writer
	// PublicURL is where users reach the listener; Started, when set, is
	// called with it once the listeners are up.
	PublicURL string
	Started   func(publicURL string)
	// LogAttrs are added to the "serving" log line.
	LogAttrs []any
}

// Run serves until ctx ends or a listener fails, then shuts down.
func Run(ctx context.Context, c Config) error {
	srv := &http.Server{
		Handler:           c.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.Log.Handler(), slog.LevelWarn),
	}
	// Workers run until workCtx ends, which happens after the HTTP server
	// has drained.
	workCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorkers()
	if c.Start != nil {
		c.Start(workCtx)
	}
	var wg sync.WaitGroup
	for _, w := range c.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w(workCtx); err != nil && !errors.Is(err, context.Canceled) {
				c.Log.Error("worker stopped", "err", err)
			}
		}()
	}
	stop := func() { stopWorkers(); wg.Wait() }

	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(c.Listener) }()
	metricsSrv, err := c.serveMetrics(serveErr)
	if err != nil {
		c.Listener.Close()
		stop()
		return err
	}
	fmt.Fprintf(c.Out, "tpp: listening on %s (public URL %s)\n", c.Listener.Addr(), c.PublicURL)
	c.Log.Info("serving", append([]any{"addr", c.Listener.Addr().String(), "public_url", c.PublicURL}, c.LogAttrs...)...)
	if c.Started != nil {
		c.Started(c.PublicURL)
	}

	select {
	case err := <-serveErr:
		stop()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintf(c.Out, "tpp: shutting down: finishing requests in flight (up to %s)\n", c.Grace)
	c.Log.Info("shutting down", "grace", c.Grace.String())
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Grace)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(shutCtx)
	}
	stop()
	if err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	c.Log.Info("stopped")
	fmt.Fprintln(c.Out, "tpp: stopped")
	return nil
}

// serveMetrics starts the metrics listener, if any.
func (c Config) serveMetrics(serveErr chan<- error) (*http.Server, error) {
	if c.MetricsListen == "" {
		return nil, nil
	}
	mln, err := net.Listen("tcp", c.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("setting --metrics-listen ($TPP_METRICS_LISTEN) = %q: %w", c.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", c.Metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { serveErr <- srv.Serve(mln) }()
	fmt.Fprintf(c.Out, "tpp: metrics on http://%s/metrics\n", mln.Addr())
	return srv, nil
}
