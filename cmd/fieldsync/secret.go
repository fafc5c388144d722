package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fieldsync/fieldsync/internal/identity"
)

// secretKeyFile is where a SQLite server given no secret key keeps the one it
// generates, in the data directory.
const secretKeyFile = "secret-key"

// secretKey returns the secret that seals the signing keys in the store
// (identity.Config.SecretKey):
//
//   - FIELDSYNC_SECRET_KEY, or the file FIELDSYNC_SECRET_KEY_FILE names (which
//     other users must not be able to read);
//   - else, on SQLite, the file secret-key in the data directory, generated
//     (mode 0600) at the first start without one, so that `fieldsync` on a fresh
//     machine needs no setting. generated is its path when this call made it.
//
// With generate false (fieldsync keys rotate-secret) a missing file is no
// secret: nil, nil. A MongoDB store without a secret is refused by
// Config.Validate: a file generated per instance would differ between instances.
func (m *Main) secretKey(generate bool) (key []byte, generated string, err error) {
	switch {
	case m.Config.SecretKey != "":
		key, err = identity.ParseSecretKey(m.Config.SecretKey)
		if err != nil {
			err = fmt.Errorf("secret-key: %w", err)
		}
		return key, "", err
	case m.Config.SecretKeyFile != "":
		key, err = identity.ReadSecretKeyFile(m.Config.SecretKeyFile)
		return key, "", err
	case storeKind(m.Config.Store) != "sqlite":
		return nil, "", errors.New("a MongoDB store needs FIELDSYNC_SECRET_KEY or FIELDSYNC_SECRET_KEY_FILE")
	}
	path := filepath.Join(m.Config.DataDir, secretKeyFile)
	key, err = identity.ReadSecretKeyFile(path)
	switch {
	case err == nil:
		return key, "", nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, "", err
	case !generate:
		return nil, "", nil
	}
	text, err := identity.NewSecretKey()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return nil, "", err
	}
	// O_EXCL: a file another process wrote meanwhile is never overwritten.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		key, err = identity.ReadSecretKeyFile(path)
		return key, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("write the secret key: %w", err)
	}
	_, err = f.WriteString(text + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, "", fmt.Errorf("write the secret key: %w", err)
	}
	key, err = identity.ParseSecretKey(text)
	return key, path, err
}

// openIdentity makes the identity service on m.Store with the configured
// secret, generating it at a first start on SQLite (and saying so).
func (m *Main) openIdentity(ctx context.Context) (*identity.Service, error) {
	secret, generated, err := m.secretKey(true)
	if err != nil {
		return nil, err
	}
	cfg := m.identityConfig()
	cfg.SecretKey = secret
	ids, err := identity.New(ctx, cfg)
	if err != nil {
		if generated != "" && errors.Is(err, identity.ErrWrongSecret) {
			// The store was sealed with a secret whose file is gone: the new
			// file is of no use, and left behind it would hide the cause.
			os.Remove(generated)
			return nil, fmt.Errorf("the store's signing keys are sealed with a secret key, and its file %s is missing: "+
				"restore it from where you backed it up, or give its path as FIELDSYNC_SECRET_KEY_FILE", generated)
		}
		if errors.Is(err, identity.ErrWrongSecret) {
			return nil, fmt.Errorf("%w; start this instance with the secret key the store was sealed with "+
				"(the one the other instances use, or the one backed up with this database)", err)
		}
		return nil, err
	}
	if generated != "" {
		m.Logger.Warn("generated the secret key that seals the token signing keys in the store; back it up apart from the database: "+
			"a backup of the database alone can no longer be restored, and a copy of it alone cannot mint tokens",
			"secret_key_file", generated)
	}
	return ids, nil
}

// RotateSecret re-seals every signing key in the store under the secret in
// newFile (fieldsync keys rotate-secret): README's "Secrets and backups" gives
// the procedure.
func (m *Main) RotateSecret(ctx context.Context, newFile string) error {
	if newFile == "" {
		return errors.New("keys rotate-secret: -new-secret-key-file is required (make one with: (umask 077; openssl rand -base64 32 > new-secret-key))")
	}
	newSecret, err := identity.ReadSecretKeyFile(newFile)
	if err != nil {
		return err
	}
	oldSecret, _, err := m.secretKey(false)
	if err != nil {
		return err
	}
	if m.Store, err = m.OpenStore(ctx, nil); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	n, err := identity.RotateSecret(ctx, m.Store, oldSecret, newSecret)
	if err != nil {
		return err
	}
	m.Logger.Info("signing keys re-sealed under a new secret key", "keys", n)
	fmt.Fprintf(m.Out, "Re-sealed %d signing key(s) under the secret key in %s; start every instance with that secret from now on, and keep the old one as long as database backups made before now.\n", n, newFile)
	return nil
}
