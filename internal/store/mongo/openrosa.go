package mongo

import (
	"context"
	"encoding/json"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// rawOrNil turns a stored JSON text back into a document, nil when absent.
func rawOrNil(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// SetFormVersionXForm stores a published version's XForm with one update
// filtered on "published, no XForm yet", so the first XForm wins on every
// server; the version is read back afterwards.
func (s *Store) SetFormVersionXForm(ctx context.Context, projectID, formID, version string, xform []byte, md5 string, meta json.RawMessage) (domain.FormVersion, error) {
	id := key(projectID, formID, version)
	_, err := s.versions.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "project_id", Value: projectID}, {Key: "state", Value: domain.VersionPublished},
			{Key: "xform", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "xform", Value: xform}, {Key: "xform_md5", Value: md5},
			{Key: "openrosa", Value: string(meta)}}}})
	if err != nil {
		return domain.FormVersion{}, translate(err)
	}
	d, err := findOne[versionDoc](ctx, s.versions, bson.D{{Key: "_id", Value: id}, {Key: "project_id", Value: projectID}})
	if err != nil {
		return domain.FormVersion{}, err
	}
	if d.State != domain.VersionPublished {
		return domain.FormVersion{}, domain.ErrStale
	}
	return d.version()
}

// SetDeviceOpenRosaKey replaces the device's OpenRosa key hash; "" removes it
// (the field is unset, so the sparse unique index skips the device).
func (s *Store) SetDeviceOpenRosaKey(ctx context.Context, deviceID, keyHash string) error {
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "openrosa_key_hash", Value: keyHash}}}}
	if keyHash == "" {
		update = bson.D{{Key: "$unset", Value: bson.D{{Key: "openrosa_key_hash", Value: ""}}}}
	}
	res, err := s.devices.UpdateOne(ctx, bson.D{{Key: "_id", Value: deviceID}}, update)
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount == 0 {
		return domain.ErrNotFound
	}
	return nil
}

// GetDeviceByOpenRosaKey returns the device holding the key hash.
func (s *Store) GetDeviceByOpenRosaKey(ctx context.Context, keyHash string) (domain.Device, error) {
	if keyHash == "" {
		return domain.Device{}, domain.ErrNotFound
	}
	d, err := findOne[deviceDoc](ctx, s.devices, bson.D{{Key: "openrosa_key_hash", Value: keyHash}})
	if err != nil {
		return domain.Device{}, err
	}
	return d.device(), nil
}

// instanceDoc is one OpenRosa submission in openrosa_instances, keyed by
// "<project>/<instance id>": the insert is the atomic step.
type instanceDoc struct {
	ID         string     `bson:"_id"`
	ProjectID  string     `bson:"project_id"`
	InstanceID string     `bson:"instance_id"`
	RecordID   string     `bson:"record_id"`
	Rev        string     `bson:"rev"`
	XMLHash    string     `bson:"xml_hash"`
	CreatedAt  *time.Time `bson:"created_at,omitempty"`
}

func (d instanceDoc) instance() domain.OpenRosaInstance {
	return domain.OpenRosaInstance{ProjectID: d.ProjectID, InstanceID: d.InstanceID, RecordID: d.RecordID,
		Rev: d.Rev, XMLHash: d.XMLHash, CreatedAt: timeVal(d.CreatedAt)}
}

// PutOpenRosaInstance inserts inst; a duplicate _id means it is held, and the
// held one is returned.
func (s *Store) PutOpenRosaInstance(ctx context.Context, inst domain.OpenRosaInstance) (domain.OpenRosaInstance, bool, error) {
	doc := instanceDoc{ID: key(inst.ProjectID, inst.InstanceID), ProjectID: inst.ProjectID, InstanceID: inst.InstanceID,
		RecordID: inst.RecordID, Rev: inst.Rev, XMLHash: inst.XMLHash, CreatedAt: timePtr(inst.CreatedAt)}
	_, err := s.instances.InsertOne(ctx, doc)
	switch {
	case err == nil:
		return doc.instance(), true, nil
	case !isDup(err):
		return domain.OpenRosaInstance{}, false, translate(err)
	}
	got, err := s.GetOpenRosaInstance(ctx, inst.ProjectID, inst.InstanceID)
	return got, false, err
}

// GetOpenRosaInstance returns ErrNotFound for an unknown instance id.
func (s *Store) GetOpenRosaInstance(ctx context.Context, projectID, instanceID string) (domain.OpenRosaInstance, error) {
	d, err := findOne[instanceDoc](ctx, s.instances, bson.D{{Key: "_id", Value: key(projectID, instanceID)}, {Key: "project_id", Value: projectID}})
	if err != nil {
		return domain.OpenRosaInstance{}, err
	}
	return d.instance(), nil
}
