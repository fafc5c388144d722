package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// config is what fsctl keeps between runs: one server and the tokens of the
// last login on it. The file holds a refresh token (a login for up to 30 days),
// so it is written with mode 0600 in a directory of mode 0700.
type config struct {
	Server   string `json:"server"`
	Username string `json:"username,omitempty"`
	// AccessToken expires at AccessExpiresAt; RefreshToken renews it.
	AccessToken     string    `json:"access_token,omitempty"`
	AccessExpiresAt time.Time `json:"access_expires_at,omitzero"`
	RefreshToken    string    `json:"refresh_token,omitempty"`
}

// configPath is FSCTL_CONFIG, or fieldsync/fsctl.json in the user's config
// directory ($XDG_CONFIG_HOME or ~/.config on Linux, ~/Library/Application
// Support on macOS, %AppData% on Windows).
func (e *env) configPath() (string, error) {
	if p := e.getenv("FSCTL_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory (set FSCTL_CONFIG): %w", err)
	}
	return filepath.Join(dir, "fieldsync", "fsctl.json"), nil
}

// loadConfig reads the config file; a missing file is an empty config.
func (e *env) loadConfig() (*config, error) {
	path, err := e.configPath()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &config{}, nil
	}
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(e.stderr, "fsctl: warning: %s holds tokens but others may read it (mode %v); run: chmod 600 %s\n",
			path, fi.Mode().Perm(), path)
	}
	var cfg config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s is not a valid fsctl config (delete it and log in again): %w", path, err)
	}
	return &cfg, nil
}

// saveConfig writes the config atomically (a temporary file renamed over the
// old one, so a crash never leaves half a file) with mode 0600.
func (e *env) saveConfig(cfg *config) error {
	path, err := e.configPath()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".fsctl-*.json") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		f.Close()
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
