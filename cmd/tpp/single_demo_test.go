package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bunqtpp/tpp/internal/browsertest"
	"github.com/bunqtpp/tpp/internal/testenv"
)

// TestDemoSinglePayment makes a single payment in the demo app: the form's
// "Pay now at bunq", the TPP's page and bunq's authorization page, then
// back on the dashboard with the payment's status.
func TestDemoSinglePayment(t *testing.T) {
	testenv.Heavy(t)
	t.Parallel()
	d := startDemo(t, demoArgs(t, t.TempDir(), "127.0.0.1:0")...)
	b := browsertest.New(t)
	b.Run("connect", chromedp.Navigate(d.appURL), chromedp.Click("#connect"), chromedp.WaitVisible(`//button[contains(., "Continue to bunq")]`),
		chromedp.Click(`//button[contains(., "Continue to bunq")]`), chromedp.WaitVisible(`//h1[contains(., "Log in to bunq")]`),
		chromedp.Click(`//button[contains(., "Continue")]`), chromedp.WaitVisible(`//button[@value="approve"]`),
		chromedp.Click(`//button[@value="approve"]`), chromedp.WaitVisible("#accounts"))

	b.Run("pay now at bunq",
		chromedp.SendKeys("#amount", "4,20"),
		chromedp.SendKeys("#iban", "NL02 ABNA 0123 4567 89"),
		chromedp.SendKeys("#name", "Bakkerij de Korenschoof"),
		chromedp.SendKeys("#description", "Demo order 2001"),
		chromedp.Click("#pay-single"),
		chromedp.WaitVisible(`//button[contains(., "Continue to bunq")]`))
	b.CheckLayout("single-consent-page")
	b.Run("continue to bunq", chromedp.Click(`//button[contains(., "Continue to bunq")]`), chromedp.WaitVisible(`//h1[contains(., "Log in to bunq")]`))
	b.Run("log in", chromedp.Click(`//button[contains(., "Continue")]`), chromedp.WaitVisible(`//button[@value="approve"]`))
	b.CheckLayout("single-bunq-approve")
	b.Run("approve", chromedp.Click(`//button[@value="approve"]`), chromedp.WaitVisible(`//p[starts-with(@id, "flash-single_")]`))
	b.CheckLayout("single-returned")
	flash := browsertest.Get(b, "flash", chromedp.Evaluate[string](`document.querySelector('[id^="flash-single_"]').id + ": " + document.querySelector('[id^="flash-single_"]').textContent`))
	if !strings.HasPrefix(flash, "flash-single_executed") && !strings.HasPrefix(flash, "flash-single_pending") {
		t.Errorf("after approving at bunq the demo says %q", flash)
	}
}
