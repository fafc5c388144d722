package mongotest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Server is an embedded FerretDB of one test alone, which the test can stop
// and start again, as an operator or a crash stops a mongod: an outage of the
// store in the middle of a run. Its data (SQLite files in a temporary
// directory) survive a stop. Clients reach it through a serializer proxy (see
// serializer) that keeps listening while FerretDB is down, so a client's
// connections drop and new ones are cut at once, as they are when the
// database host is up but its server is not.
type Server struct {
	tb    testing.TB
	dir   string
	addr  string // FerretDB's own address, the same after every Start
	proxy *serializer

	mu     sync.Mutex
	cancel context.CancelFunc // stops the running FerretDB; nil when stopped
	done   chan struct{}
}

// NewServer starts a FerretDB for the calling test and stops it, and removes
// its data, when the test ends. It skips the test when EnvURI names a real
// server: a test cannot stop that one.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	if os.Getenv(EnvURI) != "" {
		tb.Skip("mongotest: a stoppable server needs the embedded FerretDB, not " + EnvURI)
	}
	s := &Server{tb: tb, dir: tb.TempDir(), addr: "127.0.0.1:0"}
	if err := s.start(); err != nil {
		tb.Fatalf("mongotest: %v", err)
	}
	proxy, err := startSerializer(s.addr)
	if err != nil {
		s.Stop()
		tb.Fatalf("mongotest: start proxy: %v", err)
	}
	s.proxy = proxy
	tb.Cleanup(func() {
		s.Stop()
		proxy.close()
	})
	return s
}

// URI is the server's connection string (with no database name).
func (s *Server) URI() string { return "mongodb://" + s.proxy.addr() + "/" }

// Stop stops FerretDB as a crash stops a mongod: the clients' connections are
// cut first (a command in flight gets no answer; see serializer.setDown), then
// FerretDB stops. Stop returns once FerretDB has stopped; it does nothing when
// stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel == nil {
		return
	}
	if s.proxy != nil {
		s.proxy.setDown(true)
	}
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.tb.Errorf("mongotest: FerretDB did not stop within 30s")
	}
	s.cancel, s.done = nil, nil
}

// Start starts FerretDB again on the same address and data, after Stop.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return
	}
	if err := s.startLocked(); err != nil {
		s.tb.Fatalf("mongotest: restart FerretDB on %s: %v", s.addr, err)
	}
	s.proxy.setDown(false)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

// startLocked runs FerretDB on s.addr (a free port the first time, then the
// same one) and notes the address it listens on.
func (s *Server) startLocked() error {
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: s.addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + s.dir + "/",
		Logger:    ferretLogger(),
	})
	if err != nil {
		return fmt.Errorf("start FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	u, err := url.Parse(f.MongoDBURI()) // waits until the listener is open
	if err != nil {
		cancel()
		<-done
		return fmt.Errorf("FerretDB URI: %w", err)
	}
	s.addr, s.cancel, s.done = u.Host, cancel, done
	return nil
}
