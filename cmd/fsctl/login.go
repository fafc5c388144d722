package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// runLogin is fsctl login --server URL --username NAME: the password is read
// from FSCTL_PASSWORD, a terminal prompt or standard input (password.go), and
// the session is kept in the config file.
func runLogin(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "login", "--server URL --username NAME")
	server := fs.String("server", "", "the server's URL, e.g. https://sync.example.org (default: the one of the last login)")
	username := fs.String("username", "", "your username")
	allowHTTP := fs.Bool("allow-http", false, "allow a plain http:// server that is not on this machine (the password crosses the network unencrypted)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	old, err := e.loadConfig()
	if err != nil {
		return err
	}
	if *server == "" {
		*server = old.Server
	}
	if *server == "" || *username == "" {
		return fs.usageErrorf("--server and --username are required")
	}
	if err := checkServerURL(*server, *allowHTTP); err != nil {
		return err
	}
	*server = strings.TrimRight(*server, "/")

	password, err := e.readPassword("FSCTL_PASSWORD", fmt.Sprintf("Password of %s at %s: ", *username, *server), false)
	if err != nil {
		return err
	}
	c, err := api.NewClient(*server, api.WithHTTPClient(e.client()), api.WithUserAgent(userAgent()))
	if err != nil {
		return err
	}
	pair, err := c.Login(ctx, *username, password)
	if err != nil {
		return err
	}
	// The session this login replaces is ended, not left alive in nobody's hands.
	if old.RefreshToken != "" && old.Server == *server {
		_ = c.Revoke(ctx, old.RefreshToken)
	}
	cfg := &config{Server: *server, Username: strings.ToLower(strings.TrimSpace(*username))}
	cfg.setPair(pair, e.clock())
	if err := e.saveConfig(cfg); err != nil {
		return fmt.Errorf("logged in, but saving the session failed: %w", err)
	}
	path, _ := e.configPath()
	fmt.Fprintf(e.stdout, "Logged in to %s as %s (session kept in %s).\n", cfg.Server, cfg.Username, path)
	return nil
}

// checkServerURL refuses what cannot be a server URL, and plain http to
// anything but this machine: the password and tokens would cross the network
// in clear text.
func checkServerURL(s string, allowHTTP bool) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("--server %q: want a URL such as https://sync.example.org", s)
	}
	if u.Scheme == "http" && !allowHTTP {
		switch h := u.Hostname(); {
		case h == "localhost", strings.HasPrefix(h, "127."), h == "::1":
		default:
			return usageErrorf("--server %q: use https; plain http would send the password in clear text (--allow-http to do it anyway)", s)
		}
	}
	return nil
}

// runLogout is fsctl logout: the session ends on the server and its tokens
// leave the config file (the server URL stays, for the next login).
func runLogout(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "logout", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	if cfg.RefreshToken == "" {
		fmt.Fprintln(e.stdout, "Not logged in.")
		return nil
	}
	c, err := api.NewClient(cfg.Server, api.WithHTTPClient(e.client()), api.WithUserAgent(userAgent()))
	if err != nil {
		return err
	}
	revokeErr := c.Revoke(ctx, cfg.RefreshToken)
	cfg.AccessToken, cfg.RefreshToken, cfg.AccessExpiresAt = "", "", time.Time{}
	if err := e.saveConfig(cfg); err != nil {
		return err
	}
	if revokeErr != nil {
		return fmt.Errorf("the tokens are forgotten here, but the server did not confirm the logout: %w", revokeErr)
	}
	fmt.Fprintf(e.stdout, "Logged out of %s.\n", cfg.Server)
	return nil
}
