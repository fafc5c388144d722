package storetest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

func testUser(name string) domain.User {
	return domain.User{
		Username: name, DisplayName: "User " + name, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA",
		CreatedAt: at(0), UpdatedAt: at(0),
	}
}

func (s suite) users(t *testing.T) {
	s.run(t, "CreateGet", func(t *testing.T, ctx context.Context, st domain.Store) {
		u := testUser("amina")
		u.Admin = true
		u.TokensValidAfter = at(1)
		noErr(t, st.CreateUser(ctx, u), "CreateUser")
		got, err := st.GetUser(ctx, "amina")
		noErr(t, err, "GetUser")
		same(t, "user", got, u)
	})
	s.run(t, "CreateDuplicate", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateUser(ctx, testUser("amina")), "CreateUser")
		dup := testUser("amina")
		dup.DisplayName = "Someone else"
		isErr(t, st.CreateUser(ctx, dup), domain.ErrExists, "CreateUser again")
		got, err := st.GetUser(ctx, "amina")
		noErr(t, err, "GetUser")
		same(t, "user after duplicate create", got, testUser("amina"))
	})
	s.run(t, "GetUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.GetUser(ctx, "nobody")
		isErr(t, err, domain.ErrNotFound, "GetUser")
	})
	s.run(t, "Update", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateUser(ctx, testUser("amina")), "CreateUser")
		u := testUser("amina")
		u.DisplayName, u.PasswordHash = "Amina K.", "$argon2id$new"
		u.Admin, u.Disabled, u.TokensValidAfter, u.UpdatedAt = true, true, at(5), at(5)
		u.CreatedAt = at(99) // not mutable: UpdateUser keeps the stored CreatedAt
		noErr(t, st.UpdateUser(ctx, u), "UpdateUser")
		got, err := st.GetUser(ctx, "amina")
		noErr(t, err, "GetUser")
		want := u
		want.CreatedAt = at(0)
		same(t, "updated user", got, want)
	})
	s.run(t, "UpdateUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		isErr(t, st.UpdateUser(ctx, testUser("nobody")), domain.ErrNotFound, "UpdateUser")
		_, err := st.GetUser(ctx, "nobody")
		isErr(t, err, domain.ErrNotFound, "GetUser after UpdateUser of unknown")
	})
	s.run(t, "ListOrder", func(t *testing.T, ctx context.Context, st domain.Store) {
		users, err := st.ListUsers(ctx)
		noErr(t, err, "ListUsers on empty store")
		if len(users) != 0 {
			t.Fatalf("ListUsers on empty store: %d users", len(users))
		}
		for _, n := range []string{"carol", "amina", "bob"} {
			noErr(t, st.CreateUser(ctx, testUser(n)), "CreateUser "+n)
		}
		users, err = st.ListUsers(ctx)
		noErr(t, err, "ListUsers")
		same(t, "users", users, []domain.User{testUser("amina"), testUser("bob"), testUser("carol")})
	})
}

func testProject(id string) domain.Project {
	return domain.Project{ID: id, Title: "Project " + id, CreatedBy: "admin", CreatedAt: at(0)}
}

func (s suite) projects(t *testing.T) {
	s.run(t, "CreateGet", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateProject(ctx, testProject("juba-2026")), "CreateProject")
		got, err := st.GetProject(ctx, "juba-2026")
		noErr(t, err, "GetProject")
		same(t, "project", got, testProject("juba-2026"))
	})
	s.run(t, "CreateDuplicate", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateProject(ctx, testProject("juba")), "CreateProject")
		dup := testProject("juba")
		dup.Title = "Other"
		isErr(t, st.CreateProject(ctx, dup), domain.ErrExists, "CreateProject again")
		got, err := st.GetProject(ctx, "juba")
		noErr(t, err, "GetProject")
		same(t, "project after duplicate create", got, testProject("juba"))
	})
	s.run(t, "GetUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.GetProject(ctx, "nowhere")
		isErr(t, err, domain.ErrNotFound, "GetProject")
	})
	s.run(t, "ListOrder", func(t *testing.T, ctx context.Context, st domain.Store) {
		ps, err := st.ListProjects(ctx)
		noErr(t, err, "ListProjects on empty store")
		if len(ps) != 0 {
			t.Fatalf("ListProjects on empty store: %d projects", len(ps))
		}
		for _, id := range []string{"wau", "bor", "juba"} {
			noErr(t, st.CreateProject(ctx, testProject(id)), "CreateProject "+id)
		}
		ps, err = st.ListProjects(ctx)
		noErr(t, err, "ListProjects")
		same(t, "projects", ps, []domain.Project{testProject("bor"), testProject("juba"), testProject("wau")})
	})
}

func membership(project, user string, role domain.Role, m int) domain.Membership {
	return domain.Membership{ProjectID: project, Username: user, Role: role, UpdatedAt: at(m)}
}

func (s suite) memberships(t *testing.T) {
	s.run(t, "PutGet", func(t *testing.T, ctx context.Context, st domain.Store) {
		m := membership("juba", "amina", domain.RoleManager, 0)
		noErr(t, st.PutMembership(ctx, m), "PutMembership")
		got, err := st.GetMembership(ctx, "juba", "amina")
		noErr(t, err, "GetMembership")
		same(t, "membership", got, m)
	})
	s.run(t, "PutReplaces", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.PutMembership(ctx, membership("juba", "amina", domain.RoleEnumerator, 0)), "PutMembership")
		m := membership("juba", "amina", domain.RoleAnalyst, 3)
		noErr(t, st.PutMembership(ctx, m), "PutMembership again")
		got, err := st.GetMembership(ctx, "juba", "amina")
		noErr(t, err, "GetMembership")
		same(t, "replaced membership", got, m)
		all, err := st.ListMemberships(ctx, domain.MembershipFilter{})
		noErr(t, err, "ListMemberships")
		same(t, "memberships after replace", all, []domain.Membership{m})
	})
	s.run(t, "GetUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.PutMembership(ctx, membership("juba", "amina", domain.RoleManager, 0)), "PutMembership")
		_, err := st.GetMembership(ctx, "juba", "bob")
		isErr(t, err, domain.ErrNotFound, "GetMembership of a non-member")
		_, err = st.GetMembership(ctx, "wau", "amina")
		isErr(t, err, domain.ErrNotFound, "GetMembership in another project")
	})
	s.run(t, "ListFilter", func(t *testing.T, ctx context.Context, st domain.Store) {
		ms := []domain.Membership{
			membership("wau", "bob", domain.RoleEnumerator, 1),
			membership("juba", "carol", domain.RoleAnalyst, 2),
			membership("juba", "amina", domain.RoleManager, 3),
			membership("wau", "amina", domain.RoleDesigner, 4),
		}
		for _, m := range ms {
			noErr(t, st.PutMembership(ctx, m), "PutMembership")
		}
		for _, tc := range []struct {
			name string
			f    domain.MembershipFilter
			want []domain.Membership
		}{
			{"all", domain.MembershipFilter{}, []domain.Membership{ms[2], ms[1], ms[3], ms[0]}},
			{"project", domain.MembershipFilter{ProjectID: "juba"}, []domain.Membership{ms[2], ms[1]}},
			{"user", domain.MembershipFilter{Username: "amina"}, []domain.Membership{ms[2], ms[3]}},
			{"both", domain.MembershipFilter{ProjectID: "wau", Username: "bob"}, []domain.Membership{ms[0]}},
			{"none", domain.MembershipFilter{ProjectID: "bor"}, nil},
		} {
			got, err := st.ListMemberships(ctx, tc.f)
			noErr(t, err, "ListMemberships "+tc.name)
			same(t, "ListMemberships "+tc.name, got, tc.want)
		}
	})
	s.run(t, "Delete", func(t *testing.T, ctx context.Context, st domain.Store) {
		keep := membership("juba", "bob", domain.RoleEnumerator, 0)
		noErr(t, st.PutMembership(ctx, membership("juba", "amina", domain.RoleManager, 0)), "PutMembership")
		noErr(t, st.PutMembership(ctx, keep), "PutMembership")
		noErr(t, st.DeleteMembership(ctx, "juba", "amina"), "DeleteMembership")
		_, err := st.GetMembership(ctx, "juba", "amina")
		isErr(t, err, domain.ErrNotFound, "GetMembership after delete")
		isErr(t, st.DeleteMembership(ctx, "juba", "amina"), domain.ErrNotFound, "DeleteMembership again")
		all, err := st.ListMemberships(ctx, domain.MembershipFilter{})
		noErr(t, err, "ListMemberships")
		same(t, "memberships after delete", all, []domain.Membership{keep})
	})
}

func testDevice(id, project string, m int) domain.Device {
	return domain.Device{
		ID: id, ProjectID: project, Name: "Tablet " + id, EnrollmentHash: "hash-" + id,
		EnrollmentExpiresAt: at(m + 60), CreatedBy: "amina", CreatedAt: at(m),
	}
}

func (s suite) devices(t *testing.T) {
	s.run(t, "CreateGet", func(t *testing.T, ctx context.Context, st domain.Store) {
		d := testDevice("d1", "juba", 0)
		d.Info = map[string]string{"model": "SM-T295"}
		noErr(t, st.CreateDevice(ctx, d), "CreateDevice")
		got, err := st.GetDevice(ctx, "d1")
		noErr(t, err, "GetDevice")
		same(t, "device", got, d)
	})
	s.run(t, "CreateDuplicate", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateDevice(ctx, testDevice("d1", "juba", 0)), "CreateDevice")
		dup := testDevice("d1", "wau", 1)
		dup.EnrollmentHash = "another-hash"
		isErr(t, st.CreateDevice(ctx, dup), domain.ErrExists, "CreateDevice again")
	})
	s.run(t, "GetUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.GetDevice(ctx, "nope")
		isErr(t, err, domain.ErrNotFound, "GetDevice")
	})
	s.run(t, "ListByCreation", func(t *testing.T, ctx context.Context, st domain.Store) {
		ds := []domain.Device{
			testDevice("d-a", "juba", 3), testDevice("d-b", "juba", 1), testDevice("d-c", "wau", 0),
			testDevice("d-d", "juba", 2),
		}
		for _, d := range ds {
			noErr(t, st.CreateDevice(ctx, d), "CreateDevice")
		}
		got, err := st.ListDevices(ctx, "juba")
		noErr(t, err, "ListDevices")
		same(t, "devices of juba", got, []domain.Device{ds[1], ds[3], ds[0]})
		got, err = st.ListDevices(ctx, "bor")
		noErr(t, err, "ListDevices of an empty project")
		if len(got) != 0 {
			t.Errorf("ListDevices of an empty project: %d devices", len(got))
		}
	})
	s.run(t, "Enroll", func(t *testing.T, ctx context.Context, st domain.Store) {
		d := testDevice("d1", "juba", 0)
		noErr(t, st.CreateDevice(ctx, d), "CreateDevice")
		info := map[string]string{"model": "SM-T295", "os": "Android 11"}
		got, err := st.EnrollDevice(ctx, d.EnrollmentHash, info, at(10))
		noErr(t, err, "EnrollDevice")
		want := d
		want.EnrolledAt, want.Info = ptr(at(10)), info
		same(t, "enrolled device", got, want)
		stored, err := st.GetDevice(ctx, "d1")
		noErr(t, err, "GetDevice")
		same(t, "stored enrolled device", stored, want)
	})
	s.run(t, "EnrollTwice", func(t *testing.T, ctx context.Context, st domain.Store) {
		d := testDevice("d1", "juba", 0)
		noErr(t, st.CreateDevice(ctx, d), "CreateDevice")
		_, err := st.EnrollDevice(ctx, d.EnrollmentHash, map[string]string{"n": "1"}, at(10))
		noErr(t, err, "EnrollDevice")
		_, err = st.EnrollDevice(ctx, d.EnrollmentHash, map[string]string{"n": "2"}, at(11))
		isErr(t, err, domain.ErrStale, "EnrollDevice again")
		stored, err := st.GetDevice(ctx, "d1")
		noErr(t, err, "GetDevice")
		same(t, "device after second enrollment", stored.Info, map[string]string{"n": "1"})
		same(t, "EnrolledAt after second enrollment", stored.EnrolledAt, ptr(at(10)))
	})
	s.run(t, "EnrollConcurrent", func(t *testing.T, ctx context.Context, st domain.Store) {
		d := testDevice("d1", "juba", 0)
		noErr(t, st.CreateDevice(ctx, d), "CreateDevice")
		errs := concurrently(8, func(i int) error {
			_, err := st.EnrollDevice(ctx, d.EnrollmentHash, map[string]string{"caller": name("c", i)}, at(10))
			return err
		})
		exactlyOneWinner(t, "EnrollDevice", errs, domain.ErrStale)
		stored, err := st.GetDevice(ctx, "d1")
		noErr(t, err, "GetDevice")
		for i, err := range errs {
			if err == nil {
				same(t, "winner's info", stored.Info, map[string]string{"caller": name("c", i)})
			}
		}
	})
	s.run(t, "EnrollExpired", func(t *testing.T, ctx context.Context, st domain.Store) {
		d := testDevice("d1", "juba", 0)
		noErr(t, st.CreateDevice(ctx, d), "CreateDevice")
		_, err := st.EnrollDevice(ctx, d.EnrollmentHash, nil, d.EnrollmentExpiresAt.Add(time.Minute))
		isErr(t, err, domain.ErrStale, "EnrollDevice after expiry")
		stored, err := st.GetDevice(ctx, "d1")
		noErr(t, err, "GetDevice")
		if stored.EnrolledAt != nil {
			t.Errorf("expired enrollment set EnrolledAt %v", stored.EnrolledAt)
		}
	})
	s.run(t, "EnrollRevoked", func(t *testing.T, ctx context.Context, st domain.Store) {
		d := testDevice("d1", "juba", 0)
		noErr(t, st.CreateDevice(ctx, d), "CreateDevice")
		noErr(t, st.RevokeDevice(ctx, "d1", at(5)), "RevokeDevice")
		_, err := st.EnrollDevice(ctx, d.EnrollmentHash, nil, at(10))
		isErr(t, err, domain.ErrStale, "EnrollDevice of a revoked device")
	})
	s.run(t, "EnrollUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateDevice(ctx, testDevice("d1", "juba", 0)), "CreateDevice")
		_, err := st.EnrollDevice(ctx, "no-such-hash", nil, at(10))
		isErr(t, err, domain.ErrNotFound, "EnrollDevice")
	})
	s.run(t, "RevokeKeepsFirst", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateDevice(ctx, testDevice("d1", "juba", 0)), "CreateDevice")
		noErr(t, st.RevokeDevice(ctx, "d1", at(5)), "RevokeDevice")
		noErr(t, st.RevokeDevice(ctx, "d1", at(9)), "RevokeDevice again")
		got, err := st.GetDevice(ctx, "d1")
		noErr(t, err, "GetDevice")
		same(t, "RevokedAt", got.RevokedAt, ptr(at(5)))
	})
	s.run(t, "RevokeUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		isErr(t, st.RevokeDevice(ctx, "nope", at(5)), domain.ErrNotFound, "RevokeDevice")
	})
}

func (s suite) tokens(t *testing.T) {
	family := func(id, subject string) domain.TokenFamily {
		return domain.TokenFamily{ID: id, Subject: subject, CreatedAt: at(0)}
	}
	token := func(hash, familyID string) domain.RefreshToken {
		return domain.RefreshToken{Hash: hash, FamilyID: familyID, Subject: "amina", ExpiresAt: at(600), CreatedAt: at(0)}
	}
	s.run(t, "FamilyCreateGet", func(t *testing.T, ctx context.Context, st domain.Store) {
		f := domain.TokenFamily{ID: "f1", Subject: "device:d1", DeviceID: "d1", CreatedAt: at(0)}
		noErr(t, st.CreateTokenFamily(ctx, f), "CreateTokenFamily")
		got, err := st.GetTokenFamily(ctx, "f1")
		noErr(t, err, "GetTokenFamily")
		same(t, "family", got, f)
		isErr(t, st.CreateTokenFamily(ctx, family("f1", "bob")), domain.ErrExists, "CreateTokenFamily again")
		_, err = st.GetTokenFamily(ctx, "f2")
		isErr(t, err, domain.ErrNotFound, "GetTokenFamily of unknown")
	})
	s.run(t, "FamilyRevokeKeepsFirst", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateTokenFamily(ctx, family("f1", "amina")), "CreateTokenFamily")
		noErr(t, st.RevokeTokenFamily(ctx, "f1", at(5)), "RevokeTokenFamily")
		noErr(t, st.RevokeTokenFamily(ctx, "f1", at(9)), "RevokeTokenFamily again")
		got, err := st.GetTokenFamily(ctx, "f1")
		noErr(t, err, "GetTokenFamily")
		same(t, "RevokedAt", got.RevokedAt, ptr(at(5)))
		isErr(t, st.RevokeTokenFamily(ctx, "nope", at(5)), domain.ErrNotFound, "RevokeTokenFamily of unknown")
	})
	s.run(t, "RevokeSubjectFamilies", func(t *testing.T, ctx context.Context, st domain.Store) {
		for _, f := range []domain.TokenFamily{family("a1", "amina"), family("a2", "amina"), family("a3", "amina"),
			family("b1", "bob")} {
			noErr(t, st.CreateTokenFamily(ctx, f), "CreateTokenFamily")
		}
		noErr(t, st.RevokeTokenFamily(ctx, "a2", at(1)), "RevokeTokenFamily")
		n, err := st.RevokeSubjectFamilies(ctx, "amina", at(5))
		noErr(t, err, "RevokeSubjectFamilies")
		if n != 2 {
			t.Errorf("RevokeSubjectFamilies revoked %d families, want 2", n)
		}
		for id, want := range map[string]*time.Time{"a1": ptr(at(5)), "a2": ptr(at(1)), "a3": ptr(at(5)), "b1": nil} {
			f, err := st.GetTokenFamily(ctx, id)
			noErr(t, err, "GetTokenFamily")
			same(t, "RevokedAt of "+id, f.RevokedAt, want)
		}
		n, err = st.RevokeSubjectFamilies(ctx, "amina", at(6))
		noErr(t, err, "RevokeSubjectFamilies again")
		if n != 0 {
			t.Errorf("RevokeSubjectFamilies again revoked %d families, want 0", n)
		}
		n, err = st.RevokeSubjectFamilies(ctx, "nobody", at(6))
		noErr(t, err, "RevokeSubjectFamilies of a subject without families")
		if n != 0 {
			t.Errorf("RevokeSubjectFamilies of a subject without families revoked %d", n)
		}
	})
	s.run(t, "RefreshTokenCreateSpend", func(t *testing.T, ctx context.Context, st domain.Store) {
		tok := token("h1", "f1")
		tok.Parent = "h0" // kept, and returned by the spend
		noErr(t, st.CreateRefreshToken(ctx, tok), "CreateRefreshToken")
		isErr(t, st.CreateRefreshToken(ctx, token("h1", "f2")), domain.ErrExists, "CreateRefreshToken again")
		got, err := st.SpendRefreshToken(ctx, "h1", at(3))
		noErr(t, err, "SpendRefreshToken")
		want := tok
		want.SpentAt = ptr(at(3))
		same(t, "spent token", got, want)
	})
	s.run(t, "RefreshTokenReplay", func(t *testing.T, ctx context.Context, st domain.Store) {
		tok := token("h1", "f1")
		noErr(t, st.CreateRefreshToken(ctx, tok), "CreateRefreshToken")
		_, err := st.SpendRefreshToken(ctx, "h1", at(3))
		noErr(t, err, "SpendRefreshToken")
		got, err := st.SpendRefreshToken(ctx, "h1", at(7))
		isErr(t, err, domain.ErrStale, "SpendRefreshToken replay")
		want := tok
		want.SpentAt = ptr(at(3))
		same(t, "token returned on replay", got, want)
	})
	child := func(hash, parent string, m int) domain.RefreshToken {
		c := token(hash, "f1")
		c.Parent, c.CreatedAt = parent, at(m)
		return c
	}
	s.run(t, "RefreshTokenByParent", func(t *testing.T, ctx context.Context, st domain.Store) {
		// A chain h1 → h2 → h3, and a parentless token of another family.
		for _, tok := range []domain.RefreshToken{token("h1", "f1"), child("h2", "h1", 1), child("h3", "h2", 2), token("x1", "f2")} {
			noErr(t, st.CreateRefreshToken(ctx, tok), "CreateRefreshToken "+tok.Hash)
		}
		got, err := st.GetRefreshTokenByParent(ctx, "h1")
		noErr(t, err, "GetRefreshTokenByParent h1")
		same(t, "child of h1", got, child("h2", "h1", 1))
		got, err = st.GetRefreshTokenByParent(ctx, "h2")
		noErr(t, err, "GetRefreshTokenByParent h2")
		same(t, "child of h2", got, child("h3", "h2", 2))
		// The child's spend shows (the identity service reads it to tell a
		// retry from a replay).
		_, err = st.SpendRefreshToken(ctx, "h2", at(5))
		noErr(t, err, "SpendRefreshToken h2")
		got, err = st.GetRefreshTokenByParent(ctx, "h1")
		noErr(t, err, "GetRefreshTokenByParent h1 after the spend")
		want := child("h2", "h1", 1)
		want.SpentAt = ptr(at(5))
		same(t, "spent child of h1", got, want)
		// No child, an unknown parent, and "" (which marks "no parent": it
		// must not find the parentless tokens).
		for _, parent := range []string{"h3", "x1", "nope", ""} {
			_, err := st.GetRefreshTokenByParent(ctx, parent)
			isErr(t, err, domain.ErrNotFound, "GetRefreshTokenByParent "+strconv.Quote(parent))
		}
	})
	s.run(t, "RefreshTokenOneChildPerParent", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateRefreshToken(ctx, token("h1", "f1")), "CreateRefreshToken h1")
		noErr(t, st.CreateRefreshToken(ctx, child("h2", "h1", 1)), "CreateRefreshToken h2")
		isErr(t, st.CreateRefreshToken(ctx, child("h3", "h1", 2)), domain.ErrExists, "CreateRefreshToken of a second child of h1")
		// Any number of tokens have no parent.
		noErr(t, st.CreateRefreshToken(ctx, token("h4", "f1")), "CreateRefreshToken h4")
		got, err := st.GetRefreshTokenByParent(ctx, "h1")
		noErr(t, err, "GetRefreshTokenByParent h1")
		same(t, "child of h1", got, child("h2", "h1", 1))
	})
	s.run(t, "RefreshTokenUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.SpendRefreshToken(ctx, "nope", at(3))
		isErr(t, err, domain.ErrNotFound, "SpendRefreshToken")
	})
	s.run(t, "RefreshTokenSpendConcurrent", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateRefreshToken(ctx, token("h1", "f1")), "CreateRefreshToken")
		spent := make([]domain.RefreshToken, 8)
		errs := concurrently(8, func(i int) error {
			var err error
			spent[i], err = st.SpendRefreshToken(ctx, "h1", at(10+i))
			return err
		})
		exactlyOneWinner(t, "SpendRefreshToken", errs, domain.ErrStale)
		winner := -1
		for i, err := range errs {
			if err == nil {
				winner = i
			}
		}
		if winner < 0 {
			return
		}
		// The losers get the stored token: spent by the winner.
		for i, tok := range spent {
			same(t, "SpentAt seen by caller "+name("c", i), tok.SpentAt, ptr(at(10+winner)))
		}
	})
}

func (s suite) signingKeys(t *testing.T) {
	key := func(id string, m int) domain.SigningKey {
		return domain.SigningKey{ID: id, Algorithm: "EdDSA", PrivateKey: []byte("seed-of-" + id), CreatedAt: at(m)}
	}
	s.run(t, "CreateListNewestFirst", func(t *testing.T, ctx context.Context, st domain.Store) {
		ks := []domain.SigningKey{key("k2", 20), key("k1", 10), key("k3", 30)}
		for _, k := range ks {
			noErr(t, st.CreateSigningKey(ctx, k), "CreateSigningKey")
		}
		isErr(t, st.CreateSigningKey(ctx, key("k1", 40)), domain.ErrExists, "CreateSigningKey again")
		got, err := st.ListSigningKeys(ctx)
		noErr(t, err, "ListSigningKeys")
		same(t, "keys", got, []domain.SigningKey{ks[2], ks[0], ks[1]})
	})
	s.run(t, "Retire", func(t *testing.T, ctx context.Context, st domain.Store) {
		old := key("k1", 10)
		old.RetiredAt = ptr(at(15))
		for _, k := range []domain.SigningKey{old, key("k2", 20), key("k3", 30)} {
			noErr(t, st.CreateSigningKey(ctx, k), "CreateSigningKey")
		}
		noErr(t, st.RetireSigningKeys(ctx, "k3", at(31)), "RetireSigningKeys")
		got, err := st.ListSigningKeys(ctx)
		noErr(t, err, "ListSigningKeys")
		k2 := key("k2", 20)
		k2.RetiredAt = ptr(at(31))
		same(t, "keys after retire", got, []domain.SigningKey{key("k3", 30), k2, old})
	})
}

func (s suite) settings(t *testing.T) {
	s.run(t, "GetUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.GetSetting(ctx, "bootstrap")
		isErr(t, err, domain.ErrNotFound, "GetSetting")
	})
	s.run(t, "PutIfAbsent", func(t *testing.T, ctx context.Context, st domain.Store) {
		v, created, err := st.PutSettingIfAbsent(ctx, "bootstrap", "done")
		noErr(t, err, "PutSettingIfAbsent")
		if v != "done" || !created {
			t.Errorf("PutSettingIfAbsent = %q, %v; want \"done\", true", v, created)
		}
		v, created, err = st.PutSettingIfAbsent(ctx, "bootstrap", "again")
		noErr(t, err, "PutSettingIfAbsent again")
		if v != "done" || created {
			t.Errorf("PutSettingIfAbsent again = %q, %v; want \"done\", false", v, created)
		}
		got, err := st.GetSetting(ctx, "bootstrap")
		noErr(t, err, "GetSetting")
		if got != "done" {
			t.Errorf("GetSetting = %q, want \"done\"", got)
		}
	})
	s.run(t, "PutIfAbsentConcurrent", func(t *testing.T, ctx context.Context, st domain.Store) {
		stored := make([]string, 8)
		createds := make([]bool, 8)
		errs := concurrently(8, func(i int) error {
			var err error
			stored[i], createds[i], err = st.PutSettingIfAbsent(ctx, "jwt-key", name("value", i))
			return err
		})
		winner := -1
		for i, err := range errs {
			noErr(t, err, "PutSettingIfAbsent "+name("c", i))
			if createds[i] {
				if winner >= 0 {
					t.Fatalf("callers %d and %d both created the setting", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no caller created the setting")
		}
		for i := range stored {
			if stored[i] != name("value", winner) {
				t.Errorf("caller %d got %q, want the winner's %q", i, stored[i], name("value", winner))
			}
		}
		got, err := st.GetSetting(ctx, "jwt-key")
		noErr(t, err, "GetSetting")
		if got != name("value", winner) {
			t.Errorf("GetSetting = %q, want %q", got, name("value", winner))
		}
	})
}
