// Package browsertest starts a real headless Chromium for end-to-end tests of
// the browser flows, and saves screenshots as test artifacts for a person to
// look at.
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/bunqtpp/tpp/internal/testenv"
)

// Browser is one headless Chromium with its own empty profile. Every New
// call gets a fresh browser, so cookies never leak between tests (a test
// that needs "another browser" simply starts a second one).
type Browser struct {
	// Ctx drives one tab of the browser (the first, unless this Browser
	// came from FollowNewTab); pass it to chromedp.Run.
	Ctx   context.Context
	t     testing.TB
	close context.CancelFunc // closes this tab; nil for the first tab
}

// New starts Chromium, or skips (fails under CI=true) when it is missing.
// The browser closes in t.Cleanup.
func New(t testing.TB) *Browser {
	t.Helper()
	path := testenv.LookPath(t, "browser end-to-end tests", "chromium", "chromium-browser", "google-chrome")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// The machine has no network beyond loopback: stop Chromium from
		// trying to reach Google's services at every start.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("metrics-recording-only", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// Start the browser now, so a broken install fails here with a clear
	// message. No timeout on this first call: chromedp binds the browser's
	// life to the context of the first call.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium at %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return &Browser{Ctx: ctx, t: t}
}

// Run runs actions with a per-step timeout and fails the test on error,
// saving a screenshot of the page as it was.
func (b *Browser) Run(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.Screenshot("failed-" + name)
		b.t.Fatalf("browser step %q: %v", name, err)
	}
}

// FollowNewTab runs actions that make the page open a new tab (a click on
// a target=_blank link, window.open) and returns a Browser for that tab,
// in the same browser, so it shares the cookies. This tab stays open as
// it was: nothing here navigates or reloads it. The new tab closes with
// Close or in t.Cleanup.
func (b *Browser) FollowNewTab(name string, actions ...chromedp.Action[chromedp.Void]) *Browser {
	b.t.Helper()
	wctx, stopWaiting := context.WithCancel(b.Ctx)
	defer stopWaiting()
	opened := chromedp.WaitNewTarget(wctx, func(info *target.Info) bool { return info.Type == "page" })
	b.Run(name, actions...)
	var id target.ID
	select {
	case got, ok := <-opened:
		if !ok {
			b.t.Fatalf("browser step %q: this tab is gone, no new tab to follow", name)
		}
		id = got
	case <-time.After(30 * time.Second):
		b.Screenshot("failed-" + name)
		b.t.Fatalf("browser step %q: no new tab opened within 30 s", name)
	}
	ctx, cancel := chromedp.NewContext(b.Ctx, chromedp.WithTargetID(id))
	// Attach now, with no timeout: chromedp binds the tab's life to the
	// context of the first call.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		b.t.Fatalf("browser step %q: attach to the new tab: %v", name, err)
	}
	b.t.Cleanup(cancel)
	return &Browser{Ctx: ctx, t: b.t, close: cancel}
}

// Activate brings this tab to the front, as a person switching tabs does:
// the page becomes visible again (document.visibilityState, timers at full
// speed, animation frames).
func (b *Browser) Activate() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.BringToFront, cdp.Empty{}); err != nil {
		b.t.Fatalf("bring the tab to the front: %v", err)
	}
}

// Scripts turns the page's JavaScript on or off in this tab, from the next
// page load on, as a browser with JavaScript disabled does: <noscript>
// content then applies. The test's own actions still run.
func (b *Browser) Scripts(enabled bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !enabled}); err != nil {
		b.t.Fatalf("turn scripts %s: %v", map[bool]string{true: "on", false: "off"}[enabled], err)
	}
}

// Close closes a tab that FollowNewTab returned. The first tab lives as
// long as the browser.
func (b *Browser) Close() {
	b.t.Helper()
	if b.close == nil {
		b.t.Fatal("browsertest: the first tab closes with the browser")
	}
	b.close()
}

// Location returns the current URL.
func (b *Browser) Location() string {
	b.t.Helper()
	return Get(b, "location", chromedp.Location())
}

// Text returns the visible text of the page body.
func (b *Browser) Text() string {
	b.t.Helper()
	return Get(b, "text", chromedp.Text("body"))
}

// Get runs one action that returns a value, failing the test on error.
func Get[T any](b *Browser, name string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.Screenshot("failed-" + name)
		b.t.Fatalf("browser step %q: %v", name, err)
	}
	return v
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves a full-page PNG under test-artifacts/screenshots/ at the
// repository root (or $TPP_ARTIFACTS_DIR) and returns its path. Failures
// to save are logged, not fatal: the screenshot is for people, not the test.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	dir := os.Getenv("TPP_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "test-artifacts")
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	testName := unsafeName.ReplaceAllString(b.t.Name(), "_")
	path := filepath.Join(dir, testName+"--"+unsafeName.ReplaceAllString(name, "_")+".png")
	ctx, cancel := context.WithTimeout(b.Ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		// A very long page (the API reference) is too large or too slow to
		// capture whole: the visible part still shows the layout.
		vctx, vcancel := context.WithTimeout(b.Ctx, 10*time.Second)
		defer vcancel()
		png, err = chromedp.Run(vctx, chromedp.CaptureScreenshot())
	}
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot saved: %s", path)
	return path
}

// repoRoot walks up from the working directory to the folder with go.mod.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if parent := filepath.Dir(d); parent == d || strings.TrimSpace(parent) == "" {
			return dir
		}
	}
}

// Phone is the viewport the layout checks use: a common phone, in CSS pixels.
const (
	PhoneWidth  = 390
	PhoneHeight = 844
)

// overflowScript reports how wide the page is beyond the viewport and the
// elements that stick out on the right, widest first, so a failure says
// which part of the page to fix.
// A mobile browser widens its layout viewport to fit wide content, so the
// phone's width is compared with, not window.innerWidth.
const overflowScript = `((vw) => {
  const sw = document.documentElement.scrollWidth;
  if (sw <= vw) return "";
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.right > vw + 0.5 && r.width > 0) {
      const cls = typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\s+/).join(".") : "";
      out.push({w: Math.round(r.right), d: el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + cls});
    }
  }
  out.sort((a, b) => b.w - a.w);
  return "page is " + sw + " px wide in a " + vw + " px viewport; sticking out: " +
    out.slice(0, 6).map(o => o.d + " (to " + o.w + " px)").join(", ");
})`

// CheckLayout screenshots the current page at phone width (390×844, as a
// mobile browser) and at the desktop width, and fails the test when the page
// is wider than the phone's viewport (horizontal scrolling). The browser is
// back at the desktop width afterwards.
func (b *Browser) CheckLayout(name string) {
	b.t.Helper()
	b.Run("phone width "+name, chromedp.EmulateViewport(PhoneWidth, PhoneHeight, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	overflow := Get(b, "overflow "+name, chromedp.Evaluate[string](overflowScript+"("+strconv.Itoa(PhoneWidth)+")"))
	b.Screenshot(name + "-phone")
	b.Run("desktop width "+name, chromedp.EmulateViewport(1280, 900))
	b.Screenshot(name + "-desktop")
	b.Run("reset the viewport "+name, chromedp.ResetViewport())
	if overflow != "" {
		b.t.Errorf("%s overflows at %d px: %s", name, PhoneWidth, overflow)
	}
}
