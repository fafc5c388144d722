package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

const testAdminPassword = "a long enough password"

// accessToken signs admin in and returns its access token.
func accessToken(t *testing.T, s *started) string {
	t.Helper()
	body := fmt.Sprintf(`{"username": "admin", "password": %q}`, testAdminPassword)
	resp, err := http.Post("http://"+s.m.Listener.Addr().String()+"/v1/auth/token", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pair); err != nil || resp.StatusCode != http.StatusOK || pair.AccessToken == "" {
		t.Fatalf("sign-in: %d, %v", resp.StatusCode, err)
	}
	return pair.AccessToken
}

// tokenStatus is the status of GET /v1/projects with token.
func tokenStatus(t *testing.T, s *started, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.m.Listener.Addr().String()+"/v1/projects", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// writeSecret writes a new secret key file of mode and returns its path.
func writeSecret(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	text, err := identity.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// storedKeyBytes reads the signing keys' bytes of the SQLite store in dir.
func storedKeyBytes(t *testing.T, dir string) [][]byte {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "fieldsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, k := range keys {
		out = append(out, k.PrivateKey)
	}
	return out
}

// TestGeneratedSecretKey: a first start with nothing set generates the secret
// key into the data directory (mode 0600), says where and that it must be
// backed up apart, and seals the signing key with it; later starts use it;
// without the file the store refuses to start, and leaves no new file behind.
func TestGeneratedSecretKey(t *testing.T) {
	dir := t.TempDir()
	first, err := startMain(t, "-data-dir", dir, "-admin-password", testAdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	token := accessToken(t, first)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, secretKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no secret key file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret key file mode %o, want 600", fi.Mode().Perm())
	}
	secret, _ := os.ReadFile(path)
	logs := first.logs.String()
	if !strings.Contains(logs, path) || !strings.Contains(logs, "back it up apart from the database") {
		t.Errorf("the log does not say where the secret is and to back it up:\n%s", logs)
	}
	if strings.Contains(logs, strings.TrimSpace(string(secret))) {
		t.Errorf("the secret reached the log")
	}
	for _, k := range storedKeyBytes(t, dir) {
		if len(k) == 32 {
			t.Errorf("a signing key is stored bare")
		}
	}

	second, err := startMain(t, "-data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := tokenStatus(t, second, token); got != http.StatusOK {
		t.Errorf("a token of the first start: %d", got)
	}
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(second.logs.String(), "generated the secret key") {
		t.Errorf("the second start generated a secret again")
	}

	// The database without its secret (a restore that forgot it).
	if err := os.Rename(path, path+".saved"); err != nil {
		t.Fatal(err)
	}
	_, err = startMain(t, "-data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), path) {
		t.Fatalf("start without the secret key file: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("the refused start left a new secret key file")
	}
	if err := os.Rename(path+".saved", path); err != nil {
		t.Fatal(err)
	}
	third, err := startMain(t, "-data-dir", dir)
	if err != nil {
		t.Fatalf("start with the restored secret: %v", err)
	}
	if got := tokenStatus(t, third, token); got != http.StatusOK {
		t.Errorf("a token after the restore: %d", got)
	}
}

// TestSecretKeyRefusals: a wrong secret, a secret file others may read, and a
// weak or doubly given secret are refused with a message that says what to do;
// a MongoDB store without a secret too (a generated file would differ between
// the instances sharing the database).
func TestSecretKeyRefusals(t *testing.T) {
	dir := t.TempDir()
	s, err := startMain(t, "-data-dir", dir, "-admin-password", testAdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	other := writeSecret(t, t.TempDir(), "other", 0o600)
	_, err = startMain(t, "-data-dir", dir, "-secret-key-file", other)
	if err == nil || !strings.Contains(err.Error(), "cannot be unsealed") {
		t.Fatalf("start with another secret: %v", err)
	}
	readable := writeSecret(t, t.TempDir(), "readable", 0o640)
	_, err = startMain(t, "-data-dir", dir, "-secret-key-file", readable)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("start with a group-readable secret file: %v", err)
	}
	if n := len(storedKeyBytes(t, dir)); n != 1 {
		t.Errorf("refused starts left %d signing keys, want the 1 of the first start", n)
	}

	good, _ := identity.NewSecretKey()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"mongodb without a secret", []string{"-store", "mongodb://db/fieldsync"}, "FIELDSYNC_SECRET_KEY_FILE"},
		{"short secret", []string{"-secret-key", "c2hvcnQ="}, "32 random bytes"},
		{"hex secret", []string{"-secret-key", strings.Repeat("ab", 32)}, "base64"},
		{"both", []string{"-secret-key", good, "-secret-key-file", other}, "both set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.args, env(nil), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one that says %q", err, tc.want)
			}
		})
	}
	if _, err := ParseConfig([]string{"-store", "mongodb://db/fieldsync", "-secret-key", good}, env(nil), io.Discard); err != nil {
		t.Errorf("a MongoDB store with a secret: %v", err)
	}
}

// TestRotateSecretCommand: fieldsync keys rotate-secret re-seals the keys under
// the new secret: the server starts with it and accepts the tokens it signed
// before, and refuses to start with the old one.
func TestRotateSecretCommand(t *testing.T) {
	dir := t.TempDir()
	s, err := startMain(t, "-data-dir", dir, "-admin-password", testAdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	token := accessToken(t, s)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	before := storedKeyBytes(t, dir)

	var stderr strings.Builder
	if code := run(context.Background(), []string{"keys", "rotate-secret", "-data-dir", dir}, env(nil), &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "new-secret-key-file is required") {
		t.Fatalf("rotate-secret without the new secret: exit %d, %s", code, stderr.String())
	}
	newSecret := writeSecret(t, t.TempDir(), "new", 0o600)
	c, err := parseConfig([]string{"-data-dir", dir}, env(nil), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	m := NewMain(c, io.Discard)
	m.Out = &out
	if err := m.RotateSecret(context.Background(), newSecret); err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	if !strings.HasPrefix(out.String(), "Re-sealed 1 signing key(s) ") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("rotate-secret said %q, want one line", out.String())
	}
	// Through run, with its flag: a second run finds nothing to do.
	stderr.Reset()
	if code := run(context.Background(), []string{"keys", "rotate-secret", "-data-dir", dir, "-new-secret-key-file", newSecret}, env(nil), &stderr); code != 0 {
		t.Fatalf("rotate-secret again: exit %d, %s", code, stderr.String())
	}
	after := storedKeyBytes(t, dir)
	if len(after) != 1 || string(after[0]) == string(before[0]) {
		t.Fatal("the key was not re-sealed")
	}

	_, err = startMain(t, "-data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "cannot be unsealed") {
		t.Fatalf("start with the old secret after the rotation: %v", err)
	}
	s, err = startMain(t, "-data-dir", dir, "-secret-key-file", newSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := tokenStatus(t, s, token); got != http.StatusOK {
		t.Errorf("a token signed before the rotation: %d", got)
	}
	accessToken(t, s)
}

// TestKeysUsage: fieldsync keys names both subcommands.
func TestKeysUsage(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), []string{"keys"}, env(nil), &stderr); code != 0 || !strings.Contains(stderr.String(), "keys rotate-secret -new-secret-key-file") {
		t.Errorf("keys: exit %d, %q", code, stderr.String())
	}
}
