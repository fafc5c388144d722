package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// familyDoc is a refresh-token family, keyed by its id.
type familyDoc struct {
	ID        string     `bson:"_id"`
	Subject   string     `bson:"subject"`
	DeviceID  string     `bson:"device_id"`
	RevokedAt *time.Time `bson:"revoked_at,omitempty"`
	CreatedAt *time.Time `bson:"created_at,omitempty"`
}

// tokenDoc is a refresh token, keyed by the sha256 of its value.
type tokenDoc struct {
	Hash     string `bson:"_id"`
	FamilyID string `bson:"family_id"`
	Subject  string `bson:"subject"`
	// Parent is absent (not "") when the token has none, so the sparse unique
	// index by_parent holds only tokens that have one.
	Parent    string     `bson:"parent,omitempty"`
	ExpiresAt *time.Time `bson:"expires_at,omitempty"`
	SpentAt   *time.Time `bson:"spent_at,omitempty"`
	CreatedAt *time.Time `bson:"created_at,omitempty"`
}

func (d tokenDoc) token() domain.RefreshToken {
	return domain.RefreshToken{Hash: d.Hash, FamilyID: d.FamilyID, Subject: d.Subject, Parent: d.Parent,
		ExpiresAt: timeVal(d.ExpiresAt), SpentAt: utcPtr(d.SpentAt), CreatedAt: timeVal(d.CreatedAt)}
}

// spendDoc records that a refresh token was spent. Inserting it is the atomic step
// of SpendRefreshToken (its _id is the token hash), for the reason enrollmentDoc
// gives.
type spendDoc struct {
	Hash    string    `bson:"_id"`
	SpentAt time.Time `bson:"spent_at"`
}

// CreateTokenFamily returns ErrExists if the id is taken.
func (s *Store) CreateTokenFamily(ctx context.Context, f domain.TokenFamily) error {
	_, err := s.families.InsertOne(ctx, familyDoc{ID: f.ID, Subject: f.Subject, DeviceID: f.DeviceID,
		RevokedAt: utcPtr(f.RevokedAt), CreatedAt: timePtr(f.CreatedAt)})
	return translate(err)
}

// GetTokenFamily returns ErrNotFound for an unknown id.
func (s *Store) GetTokenFamily(ctx context.Context, id string) (domain.TokenFamily, error) {
	d, err := findOne[familyDoc](ctx, s.families, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return domain.TokenFamily{}, err
	}
	return domain.TokenFamily{ID: d.ID, Subject: d.Subject, DeviceID: d.DeviceID,
		RevokedAt: utcPtr(d.RevokedAt), CreatedAt: timeVal(d.CreatedAt)}, nil
}

// RevokeTokenFamily sets RevokedAt, kept from the first revocation. Returns
// ErrNotFound for an unknown id.
func (s *Store) RevokeTokenFamily(ctx context.Context, id string, at time.Time) error {
	return setOnce(ctx, s.families, id, "revoked_at", at)
}

// RevokeSubjectFamilies revokes every family of a subject and returns how many
// were not revoked before.
func (s *Store) RevokeSubjectFamilies(ctx context.Context, subject string, at time.Time) (int, error) {
	res, err := s.families.UpdateMany(ctx,
		bson.D{{Key: "subject", Value: subject}, {Key: "revoked_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: ms(at)}}}})
	if err != nil {
		return 0, translate(err)
	}
	return int(res.ModifiedCount), nil
}

// CreateRefreshToken returns ErrExists if the hash is taken, or if another token
// has the same non-empty Parent (the sparse unique index by_parent).
func (s *Store) CreateRefreshToken(ctx context.Context, t domain.RefreshToken) error {
	_, err := s.tokens.InsertOne(ctx, tokenDoc{Hash: t.Hash, FamilyID: t.FamilyID, Subject: t.Subject, Parent: t.Parent,
		ExpiresAt: timePtr(t.ExpiresAt), SpentAt: utcPtr(t.SpentAt), CreatedAt: timePtr(t.CreatedAt)})
	return translate(err)
}

// GetRefreshTokenByParent returns the token whose parent is parentHash, through
// the index by_parent. Returns ErrNotFound when there is none, and for "".
//
// SpentAt comes from the token document, whose spent_at SpendRefreshToken sets
// after inserting the spend document: a spend still in flight, or one whose
// second step failed, reads as unspent. Callers use this to pick a token to
// spend, and SpendRefreshToken, which decides on the spend document, has the last
// word.
func (s *Store) GetRefreshTokenByParent(ctx context.Context, parentHash string) (domain.RefreshToken, error) {
	if parentHash == "" {
		return domain.RefreshToken{}, domain.ErrNotFound
	}
	d, err := findOne[tokenDoc](ctx, s.tokens, bson.D{{Key: "parent", Value: parentHash}})
	if err != nil {
		return domain.RefreshToken{}, err
	}
	return d.token(), nil
}

// SpendRefreshToken marks a token spent. The spend document's insert decides,
// atomically on every server, which of several concurrent callers spends the
// token; the others get the stored token (with the winner's SpentAt) and
// ErrStale. The token's own spent_at is then set for readers of the collection; a
// crash before that changes nothing, since a replay still finds the spend.
func (s *Store) SpendRefreshToken(ctx context.Context, hash string, at time.Time) (domain.RefreshToken, error) {
	d, err := findOne[tokenDoc](ctx, s.tokens, bson.D{{Key: "_id", Value: hash}})
	if err != nil {
		return domain.RefreshToken{}, err
	}
	t := d.token()
	if t.SpentAt != nil {
		return t, domain.ErrStale
	}
	spent := ms(at)
	if _, err := s.spends.InsertOne(ctx, spendDoc{Hash: hash, SpentAt: spent}); err != nil {
		if !isDup(err) {
			return domain.RefreshToken{}, translate(err)
		}
		sd, err := findOne[spendDoc](ctx, s.spends, bson.D{{Key: "_id", Value: hash}})
		if err != nil {
			return domain.RefreshToken{}, err
		}
		winner := sd.SpentAt.UTC()
		t.SpentAt = &winner
		return t, domain.ErrStale
	}
	if _, err := s.tokens.UpdateOne(ctx, bson.D{{Key: "_id", Value: hash}, {Key: "spent_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "spent_at", Value: spent}}}}); err != nil {
		// The spend is decided and durable; only the copy on the token is missing.
		s.log.Warn("mongo: refresh token spent, but marking it failed", "err", translate(err))
	}
	t.SpentAt = &spent
	return t, nil
}

// setOnce sets a time field of the document with the given _id unless it is set
// already (revocations keep their first time). Returns ErrNotFound when no such
// document exists.
func setOnce(ctx context.Context, c *mongodrv.Collection, id, field string, at time.Time) error {
	res, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: field, Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: ms(at)}}}})
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount > 0 {
		return nil
	}
	ok, err := exists(ctx, c, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return err
	}
	if !ok {
		return domain.ErrNotFound
	}
	return nil
}
