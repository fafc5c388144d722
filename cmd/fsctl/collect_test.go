package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeviceCollect: fsctl device collect prints the server URL with the
// device's key and a QR block, --png writes a PNG, and a new key replaces the
// old (the old URL answers 403).
func TestDeviceCollect(t *testing.T) {
	srv := newServer(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("AppData", filepath.Join(home, "AppData"))
	c := &cli{t: t, env: map[string]string{}}
	c.must(adminPassword+"\n", "login", "--server", srv.URL, "--username", "admin")
	c.must("", "project", "create", "north", "--title", "North district")
	out := c.must("", "device", "add", "north", "Tablet 07")
	devID := regexp.MustCompile(`device id:\s+(\S+)`).FindStringSubmatch(out)[1]

	out = c.must("", "device", "collect", "north", devID)
	url := regexp.MustCompile(`server URL:\s+(\S+)`).FindStringSubmatch(out)
	if url == nil || !strings.HasPrefix(url[1], srv.URL+"/v1/key/") {
		t.Fatalf("device collect printed no server URL:\n%s", out)
	}
	if qrLines := regexp.MustCompile(`(?m)^[ █▀▄]{20,}$`).FindAllString(out, -1); len(qrLines) < 10 {
		t.Errorf("device collect printed no QR block:\n%s", out)
	}
	resp, err := srv.Client().Get(url[1] + "/formList")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-OpenRosa-Version") != "1.0" {
		t.Fatalf("the printed server URL: %v %v", err, resp)
	}
	resp.Body.Close()

	file := filepath.Join(t.TempDir(), "collect.png")
	out = c.must("", "device", "collect", "north", devID, "--png", file)
	f, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(f)); err != nil {
		t.Errorf("--png wrote no PNG: %v\n%s", err, out)
	}
	if resp, err := srv.Client().Get(url[1] + "/formList"); err != nil || resp.StatusCode != 403 {
		t.Errorf("the replaced key: %v %v, want 403", err, resp)
	}
	code, _, errOut := c.run("", "device", "collect", "north", "no-such-device")
	if code != 1 || !strings.Contains(errOut, "device_not_found") {
		t.Errorf("an unknown device: %d %q", code, errOut)
	}
}
