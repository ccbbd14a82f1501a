package tpp

import "testing"

func TestPaymentStatusMachine(t *testing.T) {
	t.Parallel()
	all := []PaymentStatus{PaymentPending, PaymentExecuted, PaymentRejected, PaymentCancelled, PaymentFailed}
	for _, from := range all {
		for _, to := range all {
			want := from == PaymentPending && to != PaymentPending
			if got := from.CanTransitionTo(to); got != want {
				t.Errorf("%s → %s = %v, want %v", from, to, got, want)
			}
		}
		if from.Terminal() == (from == PaymentPending) {
			t.Errorf("%s terminal = %v", from, from.Terminal())
		}
	}
	p := Payment{AmountMinor: 100005, Currency: "EUR"}
	if p.Amount() != (Money{Amount: "1000.05", Currency: "EUR"}) {
		t.Fatalf("Amount = %+v", p.Amount())
	}
}
