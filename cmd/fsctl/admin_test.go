package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFsctlAdministration walks the administration commands against a real
// server: passwd, user list / reset-password / make-admin, member list /
// remove, device list.
func TestFsctlAdministration(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	admin := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(dir, "admin.json")}}
	bob := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(dir, "bob.json")}}
	bobElsewhere := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(dir, "bob2.json")}}

	admin.must(adminPassword+"\n", "login", "--server", srv.URL, "--username", "admin")
	admin.must("", "project", "create", "juba", "--title", "Juba")
	admin.must("bob-password-1\n", "user", "add", "bob", "--display-name", "Bob B")
	admin.must("", "member", "set", "juba", "bob", "analyst")
	admin.must("", "device", "add", "juba", "Tablet 07")

	out := admin.must("", "user", "list")
	if !strings.Contains(out, "USERNAME") || !strings.Contains(out, "admin") || !strings.Contains(out, "Bob B") {
		t.Errorf("user list:\n%s", out)
	}
	out = admin.must("", "member", "list", "juba")
	if !strings.Contains(out, "bob") || !strings.Contains(out, "analyst") {
		t.Errorf("member list:\n%s", out)
	}
	out = admin.must("", "device", "list", "juba", "--json")
	if !strings.Contains(out, `"name":"Tablet 07"`) || !strings.Contains(out, `"state":"pending"`) {
		t.Errorf("device list --json:\n%s", out)
	}

	// Bob changes his password from one machine; his other session ends.
	bob.must("bob-password-1\n", "login", "--server", srv.URL, "--username", "bob")
	bobElsewhere.must("bob-password-1\n", "login", "--server", srv.URL, "--username", "bob")
	code, _, errOut := bob.run("bob-password-1\nshort\n", "passwd")
	if code != 1 || !strings.Contains(errOut, "at least 10") && !strings.Contains(errOut, "10 to 1024") {
		t.Errorf("passwd with a weak password: exit %d, stderr %q; want the rule stated", code, errOut)
	}
	if out := bob.must("bob-password-1\nbob-password-2\n", "passwd"); !strings.Contains(out, "Password changed") {
		t.Errorf("passwd: %q", out)
	}
	bob.must("", "project", "list")
	if code, _, errOut := bobElsewhere.run("", "project", "list"); code != 1 || !strings.Contains(errOut, "session has ended") {
		t.Errorf("bob's other session after passwd: exit %d, stderr %q; want it signed out", code, errOut)
	}
	code, _, errOut = bob.run("", "member", "list", "juba")
	if code != 1 || !strings.Contains(errOut, "needs the manager role in project juba; you are analyst") {
		t.Errorf("member list as analyst: exit %d, stderr %q", code, errOut)
	}

	// The admin resets bob's password: bob's session ends.
	admin.must("bob-password-3\n", "user", "reset-password", "bob")
	if code, _, _ := bob.run("", "project", "list"); code == 0 {
		t.Error("bob's session survived a password reset")
	}
	bob.must("bob-password-3\n", "login", "--server", srv.URL, "--username", "bob")

	admin.must("", "user", "make-admin", "bob")
	if out := bob.must("", "user", "list"); !strings.Contains(out, "bob") {
		t.Errorf("user list as the new admin:\n%s", out)
	}
	admin.must("", "member", "remove", "juba", "bob")
	if out := admin.must("", "member", "list", "juba"); strings.Contains(out, "bob") {
		t.Errorf("bob still listed after member remove:\n%s", out)
	}
}
