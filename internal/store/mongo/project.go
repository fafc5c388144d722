package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// projectDoc is a project in the projects collection, keyed by its id.
type projectDoc struct {
	ID        string     `bson:"_id"`
	Title     string     `bson:"title"`
	CreatedBy string     `bson:"created_by"`
	CreatedAt *time.Time `bson:"created_at,omitempty"`
}

func (d projectDoc) project() domain.Project {
	return domain.Project{ID: d.ID, Title: d.Title, CreatedBy: d.CreatedBy, CreatedAt: timeVal(d.CreatedAt)}
}

// membershipDoc is a role in the memberships collection, keyed by
// "<project>/<username>" so that a project's members sort together.
type membershipDoc struct {
	ID        string     `bson:"_id"`
	ProjectID string     `bson:"project_id"`
	Username  string     `bson:"username"`
	Role      string     `bson:"role"`
	UpdatedAt *time.Time `bson:"updated_at,omitempty"`
}

func (d membershipDoc) membership() domain.Membership {
	return domain.Membership{ProjectID: d.ProjectID, Username: d.Username, Role: domain.Role(d.Role), UpdatedAt: timeVal(d.UpdatedAt)}
}

// CreateProject returns ErrExists if the id is taken.
func (s *Store) CreateProject(ctx context.Context, p domain.Project) error {
	_, err := s.projects.InsertOne(ctx, projectDoc{ID: p.ID, Title: p.Title, CreatedBy: p.CreatedBy, CreatedAt: timePtr(p.CreatedAt)})
	return translate(err)
}

// GetProject returns ErrNotFound for an unknown id.
func (s *Store) GetProject(ctx context.Context, id string) (domain.Project, error) {
	d, err := findOne[projectDoc](ctx, s.projects, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return domain.Project{}, err
	}
	return d.project(), nil
}

// ListProjects returns every project ordered by id.
func (s *Store) ListProjects(ctx context.Context) ([]domain.Project, error) {
	docs, err := findAll[projectDoc](ctx, s.projects, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make([]domain.Project, len(docs))
	for i, d := range docs {
		out[i] = d.project()
	}
	return out, nil
}

// PutMembership creates or replaces the role of a user in a project.
func (s *Store) PutMembership(ctx context.Context, m domain.Membership) error {
	doc := membershipDoc{ID: key(m.ProjectID, m.Username), ProjectID: m.ProjectID, Username: m.Username,
		Role: string(m.Role), UpdatedAt: timePtr(m.UpdatedAt)}
	update, err := setUnset(doc)
	if err != nil {
		return err
	}
	return translate(retryUpsert(func() error {
		_, err := s.memberships.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc.ID}}, update, options.UpdateOne().SetUpsert(true))
		return err
	}))
}

// GetMembership returns ErrNotFound when the user is not a member.
func (s *Store) GetMembership(ctx context.Context, projectID, username string) (domain.Membership, error) {
	d, err := findOne[membershipDoc](ctx, s.memberships, bson.D{{Key: "_id", Value: key(projectID, username)}})
	if err != nil {
		return domain.Membership{}, err
	}
	return d.membership(), nil
}

// ListMemberships returns the matching memberships ordered by project, username.
func (s *Store) ListMemberships(ctx context.Context, f domain.MembershipFilter) ([]domain.Membership, error) {
	filter := bson.D{}
	if f.ProjectID != "" {
		filter = append(filter, bson.E{Key: "project_id", Value: f.ProjectID})
	}
	if f.Username != "" {
		filter = append(filter, bson.E{Key: "username", Value: f.Username})
	}
	docs, err := findAll[membershipDoc](ctx, s.memberships, filter,
		options.Find().SetSort(bson.D{{Key: "project_id", Value: 1}, {Key: "username", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make([]domain.Membership, len(docs))
	for i, d := range docs {
		out[i] = d.membership()
	}
	return out, nil
}

// DeleteMembership returns ErrNotFound when the user is not a member.
func (s *Store) DeleteMembership(ctx context.Context, projectID, username string) error {
	res, err := s.memberships.DeleteOne(ctx, bson.D{{Key: "_id", Value: key(projectID, username)}})
	if err != nil {
		return translate(err)
	}
	if res.DeletedCount == 0 {
		return domain.ErrNotFound
	}
	return nil
}
