package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/console"
	"github.com/fieldsync/fieldsync/internal/identity"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DataDir != "./data" || c.Store != "sqlite" || c.LogLevel != "info" ||
		c.AccessTTL != 15*time.Minute || c.DeviceRefreshTTL != 180*24*time.Hour || c.MaxBodyBytes != 16<<20 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestParseConfigFlagBeatsEnv(t *testing.T) {
	c, err := ParseConfig([]string{"-addr", "127.0.0.1:9000"}, env(map[string]string{
		"FIELDSYNC_ADDR": ":7000", "FIELDSYNC_DATA_DIR": "/srv/fs", "FIELDSYNC_ACCESS_TOKEN_TTL": "5m",
		"FIELDSYNC_STORE": "mongodb://db/fieldsync", "FIELDSYNC_SECRET_KEY_FILE": "/run/secrets/fieldsync",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9000" || c.DataDir != "/srv/fs" || c.AccessTTL != 5*time.Minute || c.Store != "mongodb://db/fieldsync" {
		t.Errorf("got %+v", c)
	}
}

func TestParseConfigRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"log level", []string{"-log-level", "loud"}, nil, "log-level"},
		{"store", nil, map[string]string{"FIELDSYNC_STORE": "postgres://x"}, `store: "postgres://x" is not one of "sqlite", a mongodb+srv:// URI, a mongodb:// URI`},
		{"store name", []string{"-store", "sqlite3"}, nil, `store: "sqlite3" is not one of`},
		{"ttl in env", nil, map[string]string{"FIELDSYNC_ACCESS_TOKEN_TTL": "soon"}, "FIELDSYNC_ACCESS_TOKEN_TTL"},
		{"negative ttl", []string{"-enrollment-ttl", "-1h"}, nil, "enrollment-ttl"},
		{"grace in env", nil, map[string]string{"FIELDSYNC_REFRESH_REUSE_GRACE": "a bit"}, "FIELDSYNC_REFRESH_REUSE_GRACE"},
		{"negative grace", []string{"-refresh-reuse-grace", "-1s"}, nil, "refresh-reuse-grace"},
		{"grace too long", []string{"-refresh-reuse-grace", "1h"}, nil, "refresh-reuse-grace"},
		{"shutdown timeout in env", nil, map[string]string{"FIELDSYNC_SHUTDOWN_TIMEOUT": "30"}, "FIELDSYNC_SHUTDOWN_TIMEOUT"},
		{"negative shutdown timeout", []string{"-shutdown-timeout", "-1s"}, nil, "shutdown-timeout"},
		{"small body cap", []string{"-max-body-bytes", "10"}, nil, "max-body-bytes"},
		{"no body pace", []string{"-min-body-rate", "0"}, nil, "min-body-rate"},
		{"too few connections", nil, map[string]string{"FIELDSYNC_MAX_CONNECTIONS": "2"}, "max-connections"},
		{"connections not a number", nil, map[string]string{"FIELDSYNC_MAX_CONNECTIONS": "many"}, "FIELDSYNC_MAX_CONNECTIONS"},
		{"body cap in env", nil, map[string]string{"FIELDSYNC_MAX_BODY_BYTES": "lots"}, "FIELDSYNC_MAX_BODY_BYTES"},
		{"stray argument", []string{"serve"}, nil, "unexpected argument"},
		{"fast path", nil, map[string]string{"FIELDSYNC_VALIDATION_FAST_PATH": "false"}, `validation-fast-path: "false" is neither on nor off`},
		{"pprof word", nil, map[string]string{"FIELDSYNC_PPROF": "yes"}, `pprof: "yes" is neither on nor off`},
		{"trusted proxies", nil, map[string]string{"FIELDSYNC_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}, `trusted-proxies: trusted proxy "proxy.internal" is not an IP address or CIDR prefix`},
		{"trusted proxy prefix", []string{"-trusted-proxies", "10.0.0.0/40"}, nil, "trusted-proxies"},
		{"map tiles over http", nil, map[string]string{"FIELDSYNC_MAP_TILES": "http://tile.example.org/{z}/{x}/{y}.png", "FIELDSYNC_MAP_TILES_ATTRIBUTION": "© OSM"}, `map-tiles: the tile URL "http://tile.example.org/{z}/{x}/{y}.png" must be https`},
		{"map tiles without {y}", []string{"-map-tiles", "https://tile.example.org/{z}/{x}.png", "-map-tiles-attribution", "© OSM"}, nil, "must contain {z}, {x} and {y}"},
		{"map tiles with {s}", []string{"-map-tiles", "https://{s}.tile.example.org/{z}/{x}/{y}.png", "-map-tiles-attribution", "© OSM"}, nil, "placeholder other than {z}, {x} and {y}"},
		{"map tiles without credit", []string{"-map-tiles", "https://tile.example.org/{z}/{x}/{y}.png"}, nil, "map-tiles needs map-tiles-attribution"},
		{"map tiles credit alone", nil, map[string]string{"FIELDSYNC_MAP_TILES_ATTRIBUTION": "© OSM"}, "map-tiles-attribution is set but map-tiles is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestRefreshReuseGrace: 2 minutes by default; 0 turns the grace off, which the
// identity service spells NoRefreshReuseGrace (its 0 means "the default").
func TestRefreshReuseGrace(t *testing.T) {
	for _, tc := range []struct {
		name         string
		args         []string
		env          map[string]string
		want         time.Duration
		wantIdentity time.Duration
	}{
		{"default", nil, nil, 2 * time.Minute, 2 * time.Minute},
		{"env", nil, map[string]string{"FIELDSYNC_REFRESH_REUSE_GRACE": "30s"}, 30 * time.Second, 30 * time.Second},
		{"flag beats env", []string{"-refresh-reuse-grace", "45s"}, map[string]string{"FIELDSYNC_REFRESH_REUSE_GRACE": "30s"}, 45 * time.Second, 45 * time.Second},
		{"off in env", nil, map[string]string{"FIELDSYNC_REFRESH_REUSE_GRACE": "0"}, 0, identity.NoRefreshReuseGrace},
		{"off by flag", []string{"-refresh-reuse-grace", "0s"}, nil, 0, identity.NoRefreshReuseGrace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(tc.args, env(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if c.RefreshReuseGrace != tc.want {
				t.Errorf("RefreshReuseGrace = %s, want %s", c.RefreshReuseGrace, tc.want)
			}
			m := &Main{Config: c}
			if got := m.identityConfig().RefreshReuseGrace; got != tc.wantIdentity {
				t.Errorf("identity RefreshReuseGrace = %s, want %s", got, tc.wantIdentity)
			}
		})
	}
}

// TestValidationFastPath: on by default; "off" (variable or flag) reaches the
// forms service.
func TestValidationFastPath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		env    map[string]string
		noFast bool
	}{
		{"default", nil, nil, false},
		{"off in env", nil, map[string]string{"FIELDSYNC_VALIDATION_FAST_PATH": "off"}, true},
		{"flag beats env", []string{"-validation-fast-path", "on"}, map[string]string{"FIELDSYNC_VALIDATION_FAST_PATH": "off"}, false},
		{"off by flag", []string{"-validation-fast-path=off"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(tc.args, env(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			m := &Main{Config: c}
			if got := m.formsConfig().NoFastPath; got != tc.noFast {
				t.Errorf("forms NoFastPath = %v, want %v", got, tc.noFast)
			}
		})
	}
}

// TestStoreBackends: each accepted setting selects a backend of the map.
func TestStoreBackends(t *testing.T) {
	for setting, want := range map[string]string{
		"sqlite": "sqlite", "mongodb://db/fs": "mongodb://", "mongodb+srv://u:p@cluster/fs": "mongodb+srv://",
	} {
		c, err := ParseConfig([]string{"-store", setting, "-secret-key-file", "/run/secrets/fieldsync"}, env(nil), io.Discard)
		if err != nil {
			t.Errorf("%s: %v", setting, err)
			continue
		}
		if _, err := backendFor(c.Store); err != nil || storeKind(c.Store) != want {
			t.Errorf("%s: kind %q, %v; want %q", setting, storeKind(c.Store), err, want)
		}
	}
}

func TestStoreURIPasswordNeverShown(t *testing.T) {
	_, err := ParseConfig(nil, env(map[string]string{"FIELDSYNC_STORE": "postgres://u:secret@h/db"}), io.Discard)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("err = %v: must refuse without showing the password", err)
	}
	if got := redactURI("mongodb://u:secret@h1,h2/db"); strings.Contains(got, "secret") || !strings.Contains(got, "u:xxxxx@h1,h2/db") {
		t.Errorf("redactURI = %q", got)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := ParseConfig(nil, env(nil), io.Discard)
	if err != nil || c.TrustedProxies != "" {
		t.Fatalf("default: %q %v", c.TrustedProxies, err)
	}
	c, err = ParseConfig([]string{"-trusted-proxies", "10.0.0.0/8,192.0.2.7"}, env(map[string]string{
		"FIELDSYNC_TRUSTED_PROXIES": "172.16.0.0/12"}), io.Discard)
	if err != nil || c.TrustedProxies != "10.0.0.0/8,192.0.2.7" {
		t.Fatalf("flag: %q %v", c.TrustedProxies, err)
	}
	c, err = ParseConfig(nil, env(map[string]string{"FIELDSYNC_TRUSTED_PROXIES": " 172.16.0.0/12 , ::1"}), io.Discard)
	if err != nil || c.TrustedProxies != " 172.16.0.0/12 , ::1" {
		t.Fatalf("env: %q %v", c.TrustedProxies, err)
	}
}

// TestMapTiles: none by default; a template and its credit, from the
// environment or flags, reach the console (loopback http allowed).
func TestMapTiles(t *testing.T) {
	c, err := ParseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := (&Main{Config: c}).consoleMapTiles(); got != (console.MapTiles{}) {
		t.Errorf("default: %+v, want no tiles", got)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want console.MapTiles
	}{
		{"env", nil, map[string]string{"FIELDSYNC_MAP_TILES": "https://tile.example.org/{z}/{x}/{y}.png", "FIELDSYNC_MAP_TILES_ATTRIBUTION": " © OpenStreetMap contributors "},
			console.MapTiles{URL: "https://tile.example.org/{z}/{x}/{y}.png", Attribution: "© OpenStreetMap contributors"}},
		{"flags, loopback http", []string{"-map-tiles", "http://127.0.0.1:8081/osm/{z}/{x}/{y}.png", "-map-tiles-attribution", "© OSM"}, nil,
			console.MapTiles{URL: "http://127.0.0.1:8081/osm/{z}/{x}/{y}.png", Attribution: "© OSM"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(tc.args, env(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := (&Main{Config: c}).consoleMapTiles(); got != tc.want {
				t.Errorf("console tiles %+v, want %+v", got, tc.want)
			}
		})
	}
}
