package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// schemaVersionSetting records, in settings, the version of the database's
// layout (collections, documents, indexes) that the newest fieldsync which
// opened it wrote. An older fieldsync refuses a database of a newer version;
// a newer one upgrades it at Open (see upgradeWriteProtocol) and then raises
// the version.
const schemaVersionSetting = "mongo.schema_version"

// schemaVersion is the layout this binary writes. History: 1, the layout
// before the setting existed (and before the write protocol of doc.go);
// 2, the write protocol of doc.go (mongo.write_protocol = 2) and the
// quarantine reason field.
const schemaVersion = 2

// ErrNewerSchema is returned by Open for a database written by a newer
// fieldsync than this one.
var ErrNewerSchema = errors.New("the database was written by a newer fieldsync")

// checkSchemaVersion refuses a database whose layout is newer than this
// binary's: it would misread it, or undo what the newer one wrote. A
// database without the setting is new or older.
func (s *Store) checkSchemaVersion(ctx context.Context) error {
	v, err := s.storedSchemaVersion(ctx)
	if err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("mongo: %w: its schema version (%s in settings) is %d, this binary knows versions up to %d; "+
			"run the newer fieldsync (or restore a dump made before the upgrade)", ErrNewerSchema, schemaVersionSetting, v, schemaVersion)
	}
	return nil
}

// storedSchemaVersion is the database's schema version, 0 when none is
// recorded.
func (s *Store) storedSchemaVersion(ctx context.Context) (int, error) {
	text, err := s.GetSetting(ctx, schemaVersionSetting)
	if errors.Is(err, domain.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(text)
	if err != nil {
		return 0, fmt.Errorf("mongo: %s is %q, not a number", schemaVersionSetting, text)
	}
	return v, nil
}

// recordSchemaVersion raises the recorded version to schemaVersion once the
// upgrades ran. The update is conditional on the value read, so two
// instances starting at once cannot lower it.
func (s *Store) recordSchemaVersion(ctx context.Context) error {
	v, err := s.storedSchemaVersion(ctx)
	if err != nil || v >= schemaVersion {
		return err
	}
	want := strconv.Itoa(schemaVersion)
	if v == 0 {
		if _, _, err := s.PutSettingIfAbsent(ctx, schemaVersionSetting, want); err != nil {
			return err
		}
		return nil
	}
	_, err = s.settings.UpdateOne(ctx, bson.D{{Key: "_id", Value: schemaVersionSetting}, {Key: "value", Value: strconv.Itoa(v)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "value", Value: want}}}})
	return translate(err)
}
