package main

import (
	"io"
	"strings"
	"testing"
	"time"
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
		"FIELDSYNC_STORE": "mongodb://db/fieldsync",
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
		{"store", nil, map[string]string{"FIELDSYNC_STORE": "postgres://x"}, "store"},
		{"ttl in env", nil, map[string]string{"FIELDSYNC_ACCESS_TOKEN_TTL": "soon"}, "FIELDSYNC_ACCESS_TOKEN_TTL"},
		{"negative ttl", []string{"-enrollment-ttl", "-1h"}, nil, "enrollment-ttl"},
		{"small body cap", []string{"-max-body-bytes", "10"}, nil, "max-body-bytes"},
		{"stray argument", []string{"serve"}, nil, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
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
