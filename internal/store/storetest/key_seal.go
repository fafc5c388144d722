package storetest

import (
	"context"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// signingKeySeal checks ReplaceSigningKeyMaterial: a compare-and-swap of a key's
// bytes, so that instances sealing the same key at once cannot overwrite each
// other, and nothing else of the key changes.
func (s suite) signingKeySeal(t *testing.T) {
	s.run(t, "ReplaceIfUnchanged", func(t *testing.T, ctx context.Context, st domain.Store) {
		k := domain.SigningKey{ID: "k1", Algorithm: "EdDSA", PrivateKey: []byte("clear-seed"), CreatedAt: at(10), RetiredAt: ptr(at(20))}
		other := domain.SigningKey{ID: "k2", Algorithm: "EdDSA", PrivateKey: []byte("clear-seed"), CreatedAt: at(30)}
		noErr(t, st.CreateSigningKey(ctx, k), "CreateSigningKey")
		noErr(t, st.CreateSigningKey(ctx, other), "CreateSigningKey")
		noErr(t, st.ReplaceSigningKeyMaterial(ctx, "k1", []byte("clear-seed"), []byte("sealed-1")), "ReplaceSigningKeyMaterial")
		isErr(t, st.ReplaceSigningKeyMaterial(ctx, "k1", []byte("clear-seed"), []byte("sealed-2")), domain.ErrStale,
			"ReplaceSigningKeyMaterial with bytes already replaced")
		isErr(t, st.ReplaceSigningKeyMaterial(ctx, "nope", []byte("clear-seed"), []byte("sealed-3")), domain.ErrNotFound,
			"ReplaceSigningKeyMaterial of an unknown key")
		got, err := st.ListSigningKeys(ctx)
		noErr(t, err, "ListSigningKeys")
		k.PrivateKey = []byte("sealed-1")
		same(t, "keys", got, []domain.SigningKey{other, k})
	})
	s.run(t, "ConcurrentReplace", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateSigningKey(ctx, domain.SigningKey{ID: "k1", Algorithm: "EdDSA", PrivateKey: []byte("clear-seed"), CreatedAt: at(10)}),
			"CreateSigningKey")
		errs := concurrently(4, func(i int) error {
			return st.ReplaceSigningKeyMaterial(ctx, "k1", []byte("clear-seed"), []byte(name("sealed", i)))
		})
		exactlyOneWinner(t, "ReplaceSigningKeyMaterial", errs, domain.ErrStale)
		got, err := st.ListSigningKeys(ctx)
		noErr(t, err, "ListSigningKeys")
		for i, e := range errs {
			if e == nil && (len(got) != 1 || string(got[0].PrivateKey) != name("sealed", i)) {
				t.Errorf("stored %q, want the winner's %q", got[0].PrivateKey, name("sealed", i))
			}
		}
	})
}
