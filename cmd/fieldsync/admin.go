package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// adminPasswordFile is where the first start of an empty store writes the
// generated password of admin, in the data directory.
const adminPasswordFile = "admin-password"

// adminPassword decides the password the first start gives admin, before the
// store is bootstrapped (identity.Service.Bootstrap):
//
//   - on a store already bootstrapped there is none; FIELDSYNC_ADMIN_PASSWORD is
//     then ignored, with a warning, since it would not change the password;
//   - FIELDSYNC_ADMIN_PASSWORD when it is set;
//   - else a generated password, written to the data directory (mode 0600)
//     before admin is created, and never logged: logs travel to log stores.
//     A first start that failed later (its port in use, say) left the file, and
//     the next start uses the password in it, so it is never lost.
//
// file is the path of the password file when the password comes from it.
func (m *Main) adminPassword(ctx context.Context) (password, file string, err error) {
	_, err = m.Store.GetSetting(ctx, identity.BootstrapSetting)
	switch {
	case err == nil:
		if m.Config.AdminPassword != "" {
			m.Logger.Warn("FIELDSYNC_ADMIN_PASSWORD is ignored: the store has its admin already, and the setting is only used on the first start of an empty store; sign in as admin to change the password")
		}
		if path := filepath.Join(m.Config.DataDir, adminPasswordFile); fileExists(path) {
			m.Logger.Warn("the file with admin's first password is still there: once admin's password is changed, delete it", "password_file", path)
		}
		return "", "", nil
	case !errors.Is(err, domain.ErrNotFound):
		return "", "", fmt.Errorf("read the bootstrap marker: %w", err)
	}
	if m.Config.AdminPassword != "" {
		return m.Config.AdminPassword, "", nil
	}
	path := filepath.Join(m.Config.DataDir, adminPasswordFile)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), path, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("read %s: %w", path, err)
	}
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	password = base64.RawURLEncoding.EncodeToString(b)
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return "", "", err
	}
	if err := writeSecretFile(path, password+"\n"); err != nil {
		return "", "", fmt.Errorf("write the admin password: %w", err)
	}
	return password, path, nil
}

// writeSecretFile writes data to a new file readable by this user only, and
// syncs it, so that what it holds survives a crash right after.
func writeSecretFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
