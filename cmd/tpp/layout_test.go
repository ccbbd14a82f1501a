package main

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bunqtpp/tpp/internal/browsertest"
	"github.com/bunqtpp/tpp/internal/testenv"
)

// TestPagesFitAPhone opens every kind of page a person sees — the demo app
// before and after connecting, the consent page, the emulated bunq's pages
// and the error pages — at phone width (390×844) and fails when one scrolls
// sideways. Screenshots at phone and desktop width go to test-artifacts/.
func TestPagesFitAPhone(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	d := startDemo(t, demoArgs(t, t.TempDir(), "127.0.0.1:0")...)
	b := browsertest.New(t)

	b.Run("home", chromedp.Navigate(d.publicURL+"/"), chromedp.WaitVisible(`//a[@href="/demo/"]`))
	b.CheckLayout("home")
	b.Run("landing", chromedp.Navigate(d.appURL), chromedp.WaitVisible("#connect"))
	b.CheckLayout("demo-landing")
	b.Run("connect", chromedp.Click("#connect"), chromedp.WaitVisible(`//button[contains(., "Continue to bunq")]`))
	b.CheckLayout("consent-page")
	b.Run("continue to bunq", chromedp.Click(`//button[contains(., "Continue to bunq")]`), chromedp.WaitVisible(`//h1[contains(., "Log in to bunq")]`))
	b.CheckLayout("bunq-login")
	b.Run("pick the first sandbox user", chromedp.Click(`//button[contains(., "Continue")]`), chromedp.WaitVisible(`//button[@value="approve"]`))
	b.CheckLayout("bunq-approve")
	b.Run("approve", chromedp.Click(`//button[@value="approve"]`), chromedp.WaitVisible("#accounts"))
	b.CheckLayout("demo-dashboard")

	b.Run("docs", chromedp.Navigate(d.publicURL+"/docs#createConsent"), chromedp.WaitVisible("#createConsent"))
	b.CheckLayout("docs")
	b.Run("demo not found", chromedp.Navigate(d.appURL+"no-such-page"), chromedp.WaitVisible(`//a[@href="/demo/"]`))
	b.CheckLayout("demo-not-found")
	b.Run("consent not found", chromedp.Navigate(d.publicURL+"/connect/cns_no_such_consent"), chromedp.WaitVisible("h1"))
	b.CheckLayout("error-consent-not-found")
	b.Run("callback without state", chromedp.Navigate(d.publicURL+"/oauth/callback?code=x&state=forged"), chromedp.WaitVisible("h1"))
	b.CheckLayout("error-callback")
}
