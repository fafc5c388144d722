package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// refreshMargin renews an access token this long before it expires, so it does
// not expire in flight.
const refreshMargin = 30 * time.Second

// session is a logged-in client: the config's server and tokens.
type session struct {
	e   *env
	cfg *config
	c   *api.Client
}

// errNotLoggedIn is answered when the config holds no session.
var errNotLoggedIn = errors.New("not logged in: run fsctl login --server URL --username NAME")

// session returns a client for the server of the last login, with a fresh
// access token (renewed with the refresh token when it has expired).
func (e *env) session(ctx context.Context) (*session, error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, err
	}
	if cfg.Server == "" || cfg.RefreshToken == "" {
		return nil, errNotLoggedIn
	}
	c, err := api.NewClient(cfg.Server, api.WithHTTPClient(e.client()), api.WithUserAgent(userAgent()), api.WithToken(cfg.AccessToken))
	if err != nil {
		return nil, err
	}
	s := &session{e: e, cfg: cfg, c: c}
	if cfg.AccessToken == "" || !e.clock().Add(refreshMargin).Before(cfg.AccessExpiresAt) {
		if err := s.refresh(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// do calls f with the client. If the server refuses the access token anyway (a
// clock far off, a rotated signing key), it renews the token once and calls f
// again: a 401 unauthorized is answered before any handler runs, so nothing
// was done the first time.
func (s *session) do(ctx context.Context, f func(*api.Client) error) error {
	err := f(s.c)
	if !api.IsCode(err, api.CodeUnauthorized) {
		return err
	}
	if rerr := s.refresh(ctx); rerr != nil {
		return rerr
	}
	return f(s.c)
}

// refresh renews the token pair and saves it. Refresh tokens are one use: two
// fsctl processes refreshing with the same token would look like a stolen
// token to the server, which then revokes the whole session. So the renewal
// runs under a lock file, and a process that finds the config already renewed
// by another one takes that pair instead of spending the old token again.
func (s *session) refresh(ctx context.Context) error {
	path, err := s.e.configPath()
	if err != nil {
		return err
	}
	unlock, err := lockFile(ctx, path+".lock")
	if err != nil {
		return err
	}
	defer unlock()

	cur, err := s.e.loadConfig()
	if err != nil {
		return err
	}
	if cur.Server == s.cfg.Server && cur.RefreshToken != "" && cur.RefreshToken != s.cfg.RefreshToken {
		// Another process renewed (or logged in) meanwhile: our refresh token
		// is spent; take the new pair.
		s.cfg = cur
		s.c.SetToken(cur.AccessToken)
		if s.e.clock().Add(refreshMargin).Before(cur.AccessExpiresAt) {
			return nil
		}
	}
	pair, err := s.c.Refresh(ctx, s.cfg.RefreshToken)
	if api.IsCode(err, "invalid_grant") {
		s.cfg.AccessToken, s.cfg.RefreshToken, s.cfg.AccessExpiresAt = "", "", time.Time{}
		_ = s.e.saveConfig(s.cfg)
		return fmt.Errorf("the session has ended (expired, logged out or revoked): run fsctl login --server %s --username %s", s.cfg.Server, s.cfg.Username)
	}
	if err != nil {
		return err
	}
	s.cfg.setPair(pair, s.e.clock())
	return s.e.saveConfig(s.cfg)
}

// setPair keeps a fresh token pair.
func (c *config) setPair(p api.TokenResponse, now time.Time) {
	c.AccessToken, c.RefreshToken = p.AccessToken, p.RefreshToken
	c.AccessExpiresAt = now.Add(time.Duration(p.ExpiresIn) * time.Second).UTC()
}

// Lock file timing: a renewal takes one request, so a lock older than
// staleLock was left by a process that died, and is broken.
const (
	lockPoll  = 50 * time.Millisecond
	staleLock = 2 * requestTimeout
)

// lockFile takes an exclusive lock by creating path, which only one process
// can do; it waits for another holder, and breaks a stale lock.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { _ = os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("locking the config: %w", err)
		}
		if fi, serr := os.Stat(path); serr == nil && time.Since(fi.ModTime()) > staleLock {
			_ = os.Remove(path)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}
