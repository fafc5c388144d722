package storetest

import (
	"context"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// refreshTokenLookup checks GetRefreshToken: the identity service reads a token
// before spending it, so that an expired one is refused without being spent.
func (s suite) refreshTokenLookup(t *testing.T) {
	s.run(t, "GetRefreshToken", func(t *testing.T, ctx context.Context, st domain.Store) {
		tok := domain.RefreshToken{Hash: "h1", FamilyID: "f1", Subject: "amina", Parent: "h0",
			ExpiresAt: at(600), CreatedAt: at(0)}
		noErr(t, st.CreateRefreshToken(ctx, tok), "CreateRefreshToken")
		got, err := st.GetRefreshToken(ctx, "h1")
		noErr(t, err, "GetRefreshToken")
		same(t, "unspent token", got, tok)
		_, err = st.SpendRefreshToken(ctx, "h1", at(3))
		noErr(t, err, "SpendRefreshToken")
		got, err = st.GetRefreshToken(ctx, "h1")
		noErr(t, err, "GetRefreshToken after the spend")
		want := tok
		want.SpentAt = ptr(at(3))
		same(t, "spent token", got, want)
		_, err = st.GetRefreshToken(ctx, "nope")
		isErr(t, err, domain.ErrNotFound, "GetRefreshToken of unknown")
	})
}
