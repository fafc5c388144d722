package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// settingDoc is one server-wide value, keyed by its name.
type settingDoc struct {
	Key   string `bson:"_id"`
	Value string `bson:"value"`
}

// GetSetting returns ErrNotFound for an unknown key.
func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	d, err := findOne[settingDoc](ctx, s.settings, bson.D{{Key: "_id", Value: key}})
	if err != nil {
		return "", err
	}
	return d.Value, nil
}

// PutSettingIfAbsent stores value under key unless the key exists. The insert is
// the atomic step: the unique _id lets exactly one concurrent caller create the
// key, and every other caller reads the value that won.
func (s *Store) PutSettingIfAbsent(ctx context.Context, key, value string) (string, bool, error) {
	_, err := s.settings.InsertOne(ctx, settingDoc{Key: key, Value: value})
	if err == nil {
		return value, true, nil
	}
	if !isDup(err) {
		return "", false, translate(err)
	}
	stored, err := s.GetSetting(ctx, key)
	if err != nil {
		return "", false, err
	}
	return stored, false, nil
}
