package mongo

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// deviceDoc is a tablet in the devices collection, keyed by its id. The
// enrollment hash is omitted when empty, so the sparse unique index on it only
// covers devices that have a code.
type deviceDoc struct {
	ID                  string            `bson:"_id"`
	ProjectID           string            `bson:"project_id"`
	Name                string            `bson:"name"`
	EnrollmentHash      string            `bson:"enrollment_hash,omitempty"`
	EnrollmentExpiresAt *time.Time        `bson:"enrollment_expires_at,omitempty"`
	EnrolledAt          *time.Time        `bson:"enrolled_at,omitempty"`
	Info                map[string]string `bson:"info,omitempty"`
	InfoPairs           []kv              `bson:"info_pairs,omitempty"`
	RevokedAt           *time.Time        `bson:"revoked_at,omitempty"`
	CreatedBy           string            `bson:"created_by"`
	CreatedAt           *time.Time        `bson:"created_at,omitempty"`
	// OpenRosaKeyHash is omitted when empty, for the sparse unique index.
	OpenRosaKeyHash string `bson:"openrosa_key_hash,omitempty"`
}

func (d deviceDoc) device() domain.Device {
	return domain.Device{
		ID: d.ID, ProjectID: d.ProjectID, Name: d.Name, EnrollmentHash: d.EnrollmentHash,
		EnrollmentExpiresAt: timeVal(d.EnrollmentExpiresAt), EnrolledAt: utcPtr(d.EnrolledAt),
		Info: decodeMap(d.Info, d.InfoPairs), RevokedAt: utcPtr(d.RevokedAt),
		CreatedBy: d.CreatedBy, CreatedAt: timeVal(d.CreatedAt),
	}
}

// enrollmentDoc records that a device's enrollment code was used. Inserting it is
// the one atomic step of EnrollDevice: its _id is the device id, so of several
// concurrent callers exactly one inserts it, on every server. (A conditional
// findAndModify alone would do on MongoDB, but FerretDB v1 evaluates the filter and
// writes the document in two steps, and lets several callers win.)
type enrollmentDoc struct {
	DeviceID   string    `bson:"_id"`
	EnrolledAt time.Time `bson:"enrolled_at"`
}

// CreateDevice returns ErrExists if the id (or the enrollment hash) is taken.
func (s *Store) CreateDevice(ctx context.Context, d domain.Device) error {
	info, pairs := encodeMap(d.Info)
	_, err := s.devices.InsertOne(ctx, deviceDoc{
		ID: d.ID, ProjectID: d.ProjectID, Name: d.Name, EnrollmentHash: d.EnrollmentHash,
		EnrollmentExpiresAt: timePtr(d.EnrollmentExpiresAt), EnrolledAt: utcPtr(d.EnrolledAt),
		Info: info, InfoPairs: pairs, RevokedAt: utcPtr(d.RevokedAt),
		CreatedBy: d.CreatedBy, CreatedAt: timePtr(d.CreatedAt),
	})
	return translate(err)
}

// GetDevice returns ErrNotFound for an unknown id.
func (s *Store) GetDevice(ctx context.Context, id string) (domain.Device, error) {
	d, err := findOne[deviceDoc](ctx, s.devices, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return domain.Device{}, err
	}
	return d.device(), nil
}

// ListDevices returns a project's devices ordered by creation time (then id).
func (s *Store) ListDevices(ctx context.Context, projectID string) ([]domain.Device, error) {
	docs, err := findAll[deviceDoc](ctx, s.devices, bson.D{{Key: "project_id", Value: projectID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make([]domain.Device, len(docs))
	for i, d := range docs {
		out[i] = d.device()
	}
	return out, nil
}

// EnrollDevice uses an enrollment code: it checks the device, claims the code by
// inserting its enrollment document (exactly one caller succeeds), then marks the
// device enrolled with one findOneAndUpdate filtered on {not enrolled, not
// revoked, not expired}, which also refuses a device revoked meanwhile. A crash between the claim and the update leaves the code used and the
// device not enrolled: the safe side for a one-use code; a manager issues a new
// one.
func (s *Store) EnrollDevice(ctx context.Context, enrollmentHash string, info map[string]string, now time.Time) (domain.Device, error) {
	if enrollmentHash == "" {
		return domain.Device{}, domain.ErrNotFound
	}
	d, err := findOne[deviceDoc](ctx, s.devices, bson.D{{Key: "enrollment_hash", Value: enrollmentHash}})
	if err != nil {
		return domain.Device{}, err
	}
	if d.EnrolledAt != nil || d.RevokedAt != nil || !now.Before(timeVal(d.EnrollmentExpiresAt)) {
		return domain.Device{}, domain.ErrStale
	}
	at := ms(now)
	if _, err := s.enrollments.InsertOne(ctx, enrollmentDoc{DeviceID: d.ID, EnrolledAt: at}); err != nil {
		if isDup(err) {
			return domain.Device{}, domain.ErrStale
		}
		return domain.Device{}, translate(err)
	}
	infoDoc, pairs := encodeMap(info)
	set := bson.D{{Key: "enrolled_at", Value: at}}
	unset := bson.D{}
	if infoDoc != nil {
		set = append(set, bson.E{Key: "info", Value: infoDoc})
	} else {
		unset = append(unset, bson.E{Key: "info", Value: ""})
	}
	if pairs != nil {
		set = append(set, bson.E{Key: "info_pairs", Value: pairs})
	} else {
		unset = append(unset, bson.E{Key: "info_pairs", Value: ""})
	}
	update := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	filter := bson.D{{Key: "_id", Value: d.ID}, {Key: "enrolled_at", Value: nil}, {Key: "revoked_at", Value: nil},
		{Key: "enrollment_expires_at", Value: bson.D{{Key: "$gt", Value: now}}}}
	var out deviceDoc
	err = s.devices.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&out)
	if err != nil {
		if err = translate(err); errors.Is(err, domain.ErrNotFound) {
			return domain.Device{}, domain.ErrStale // revoked (or expired) meanwhile
		}
		return domain.Device{}, err
	}
	return out.device(), nil
}

// RevokeDevice sets RevokedAt, kept from the first revocation. Returns
// ErrNotFound for an unknown id.
func (s *Store) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	return setOnce(ctx, s.devices, id, "revoked_at", at)
}
