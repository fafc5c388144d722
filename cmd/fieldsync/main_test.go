package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestConnectionCap: past FIELDSYNC_MAX_CONNECTIONS, a client waits to be
// served until a connection frees up, instead of each slow or idle client
// taking a goroutine and a file descriptor of its own.
func TestConnectionCap(t *testing.T) {
	const limit = 16
	c, err := ParseConfig([]string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-max-connections", fmt.Sprint(limit),
		"-admin-password", "a long enough password"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMain(c, io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = m.Close()
	})
	select {
	case <-m.Ready:
	case err := <-done:
		t.Fatal(err)
	}
	addr := m.Listener.Addr().String()
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// Each held connection is in the middle of its request line.
	var held []net.Conn
	for range limit {
		conn := dial()
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\n")
		held = append(held, conn)
	}
	extra := dial()
	fmt.Fprint(extra, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
	r := bufio.NewReader(extra)
	_ = extra.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection past the cap was served (read: %v)", err)
	}
	held[0].Close()
	_ = extra.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("the waiting client was not served once a connection freed up: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}
