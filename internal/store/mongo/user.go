package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// userDoc is a user in the users collection, keyed by username.
type userDoc struct {
	Username         string     `bson:"_id"`
	DisplayName      string     `bson:"display_name"`
	PasswordHash     string     `bson:"password_hash"`
	Admin            bool       `bson:"admin"`
	Disabled         bool       `bson:"disabled"`
	TokensValidAfter *time.Time `bson:"tokens_valid_after,omitempty"`
	CreatedAt        *time.Time `bson:"created_at,omitempty"`
	UpdatedAt        *time.Time `bson:"updated_at,omitempty"`
}

func toUserDoc(u domain.User) userDoc {
	return userDoc{
		Username: u.Username, DisplayName: u.DisplayName, PasswordHash: u.PasswordHash,
		Admin: u.Admin, Disabled: u.Disabled, TokensValidAfter: timePtr(u.TokensValidAfter),
		CreatedAt: timePtr(u.CreatedAt), UpdatedAt: timePtr(u.UpdatedAt),
	}
}

func (d userDoc) user() domain.User {
	return domain.User{
		Username: d.Username, DisplayName: d.DisplayName, PasswordHash: d.PasswordHash,
		Admin: d.Admin, Disabled: d.Disabled, TokensValidAfter: timeVal(d.TokensValidAfter),
		CreatedAt: timeVal(d.CreatedAt), UpdatedAt: timeVal(d.UpdatedAt),
	}
}

// CreateUser stores a new user. Returns ErrExists if the username is taken.
func (s *Store) CreateUser(ctx context.Context, u domain.User) error {
	_, err := s.users.InsertOne(ctx, toUserDoc(u))
	return translate(err)
}

// GetUser returns ErrNotFound for an unknown username.
func (s *Store) GetUser(ctx context.Context, username string) (domain.User, error) {
	d, err := findOne[userDoc](ctx, s.users, bson.D{{Key: "_id", Value: username}})
	if err != nil {
		return domain.User{}, err
	}
	return d.user(), nil
}

// UpdateUser replaces everything but Username and CreatedAt. Returns ErrNotFound
// for an unknown username.
func (s *Store) UpdateUser(ctx context.Context, u domain.User) error {
	update, err := setUnset(toUserDoc(u), "created_at")
	if err != nil {
		return err
	}
	res, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: u.Username}}, update)
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount == 0 {
		return domain.ErrNotFound
	}
	return nil
}

// ListUsers returns every user ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]domain.User, error) {
	docs, err := findAll[userDoc](ctx, s.users, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make([]domain.User, len(docs))
	for i, d := range docs {
		out[i] = d.user()
	}
	return out, nil
}
