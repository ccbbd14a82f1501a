package oauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/bunqtpp/tpp"
	"github.com/bunqtpp/tpp/bankctx"
)

// RecheckGrant asks the bank whether c's grant still holds and revokes c
// if the bank refuses it. Package notify calls it for each consent an
// OAUTH callback may concern: the callback itself is only a hint.
func (s *Service) RecheckGrant(ctx context.Context, c *tpp.Consent, requestID string) error {
	err := s.bank.Verify(ctx, c)
	if err == nil {
		s.log.InfoContext(ctx, "OAUTH callback: grant still valid", "consent_id", c.ID)
		return nil
	}
	if !errors.Is(err, bankctx.ErrGrantRevoked) {
		return fmt.Errorf("oauth: re-check consent %s with the bank: %w", c.ID, err)
	}
	_, terr := s.consents.TransitionConsent(ctx, tpp.ConsentTransition{
		ID: c.ID, From: c.Status, To: tpp.ConsentRevoked, Actor: tpp.ActorBank, RequestID: requestID,
		Detail: "grant withdrawn at bunq (OAUTH callback, confirmed with the bank)",
	})
	if terr != nil && tpp.ErrorCode(terr) != tpp.EConflict {
		return terr
	}
	if err := s.bank.Purge(ctx, c.ID); err != nil {
		return err
	}
	if terr == nil {
		s.log.InfoContext(ctx, "OAUTH callback: consent revoked by the bank", "consent_id", c.ID)
	}
	return nil
}
