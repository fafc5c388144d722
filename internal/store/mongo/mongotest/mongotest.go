// Package mongotest gives tests a MongoDB-protocol server and fresh databases on it.
//
// The server is the one named by FIELDSYNC_TEST_MONGO_URI when that is set (a real
// MongoDB); otherwise it is a FerretDB v1 embedded in the test binary, started on
// first use with its SQLite handler in a temporary directory and shared by every test
// of the binary. No mongod can be installed on the build machines, and FerretDB
// speaks the wire protocol, so the store is tested over the wire either way. The
// tests reach FerretDB through a small proxy that runs document-modifying commands
// one at a time, restoring the single-document atomicity MongoDB guarantees and
// FerretDB v1 lacks (see serializer).
//
// A package whose tests use it stops the embedded server and removes its directory
// by running its tests through RunMain:
//
//	func TestMain(m *testing.M) { os.Exit(mongotest.RunMain(m)) }
//
// The embedded server is process-wide state on purpose: starting FerretDB per test
// would cost more than the tests themselves.
package mongotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/store/mongo"
)

// EnvURI names the environment variable that points the tests at a real MongoDB
// instead of the embedded FerretDB.
const EnvURI = "FIELDSYNC_TEST_MONGO_URI"

// server is the process-wide test server, started once.
var server struct {
	once   sync.Once
	uri    string
	err    error
	dir    string             // FerretDB's data directory, "" for an external server
	cancel context.CancelFunc // stops FerretDB
	done   chan struct{}      // closed when FerretDB's Run returned
	proxy  *serializer        // between the clients and FerretDB (see serializer)
	client *mongodrv.Client   // drops the test databases

	mu      sync.Mutex
	stopped bool
}

// URI returns the MongoDB URI tests connect to: FIELDSYNC_TEST_MONGO_URI if set,
// else the URI of the embedded FerretDB, started on the first call.
func URI(tb testing.TB) string {
	tb.Helper()
	server.once.Do(start)
	if server.err != nil {
		tb.Fatalf("mongotest: %v", server.err)
	}
	return server.uri
}

// start starts FerretDB unless the environment names a server, and connects the
// client that drops test databases.
func start() {
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.stopped {
		server.err = fmt.Errorf("test server used after RunMain stopped it")
		return
	}
	if uri := os.Getenv(EnvURI); uri != "" {
		server.uri = uri
	} else if err := startFerretDB(); err != nil {
		server.err = err
		return
	}
	client, err := mongodrv.Connect(options.Client().ApplyURI(server.uri))
	if err != nil {
		server.err = fmt.Errorf("connect to %s: %w", server.uri, err)
		return
	}
	server.client = client
}

// startFerretDB runs an embedded FerretDB on a free local port (its log: see
// EnvFerretDBLog).
func startFerretDB() error {
	dir, err := os.MkdirTemp("", "fieldsync-ferretdb-")
	if err != nil {
		return fmt.Errorf("create FerretDB directory: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:  "sqlite",
		// The trailing slash makes it a directory: one SQLite file per database.
		// No fsync: the data lives as long as the test binary.
		SQLiteURL: "file:" + dir + "/?_pragma=synchronous(off)",
		Logger:    ferretLogger(),
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("start FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	server.dir, server.cancel, server.done = dir, cancel, done
	// MongoDBURI waits until Run has opened the listener, so it must come after
	// Run was started (in the goroutine above), never before.
	u, err := url.Parse(f.MongoDBURI())
	if err != nil {
		return fmt.Errorf("FerretDB URI: %w", err)
	}
	proxy, err := startSerializer(u.Host)
	if err != nil {
		return fmt.Errorf("start proxy: %w", err)
	}
	server.proxy = proxy
	server.uri = "mongodb://" + proxy.addr() + "/"
	return nil
}

// EnvFerretDBLog names the environment variable that, set to a slog level
// (debug, info, warn, error), sends FerretDB's log at that level to stderr, for
// debugging the embedded server. Unset, the log is discarded: FerretDB logs every
// connection, which would bury the test output.
const EnvFerretDBLog = "FIELDSYNC_TEST_FERRETDB_LOG"

func ferretLogger() *slog.Logger {
	var level slog.Level
	name := os.Getenv(EnvFerretDBLog)
	if name == "" || level.UnmarshalText([]byte(name)) != nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// RunMain runs the package's tests, then stops the embedded FerretDB (if one was
// started) and removes its directory. It returns m.Run's exit code for os.Exit.
func RunMain(m *testing.M) int {
	code := m.Run()
	stop()
	return code
}

// stop disconnects the helper client and stops FerretDB; it is safe to call when
// nothing was started.
func stop() {
	server.mu.Lock()
	defer server.mu.Unlock()
	server.stopped = true
	if server.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = server.client.Disconnect(ctx)
		cancel()
		server.client = nil
	}
	if server.cancel != nil {
		server.cancel()
		select {
		case <-server.done:
		case <-time.After(10 * time.Second):
		}
		server.cancel = nil
	}
	if server.proxy != nil {
		server.proxy.close()
		server.proxy = nil
	}
	if server.dir != "" {
		_ = os.RemoveAll(server.dir)
		server.dir = ""
	}
}

// Config returns a store configuration for a fresh, uniquely named database on
// the test server, dropped when the test ends. VoidGrace is short so that tests
// which stage a crashed writer wait little, yet long enough that writers slowed
// by a loaded machine are rarely voided; PendingGrace is long so that the sweep
// never completes a write that is merely slow (tests of the sweep shorten it).
// The logger discards, because the store may log after the test has finished.
func Config(tb testing.TB) mongo.Config {
	tb.Helper()
	uri := URI(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	// FerretDB limits database names to 63 characters of [A-Za-z0-9_-].
	name := "fieldsync_test_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		server.mu.Lock()
		client := server.client
		server.mu.Unlock()
		if client == nil {
			return
		}
		if err := client.Database(name).Drop(ctx); err != nil {
			tb.Logf("mongotest: drop database %s: %v", name, err)
		}
	})
	return mongo.Config{
		URI:           uri,
		Database:      name,
		Logger:        slog.New(slog.DiscardHandler),
		VoidGrace:     time.Second,
		PendingGrace:  time.Minute,
		SweepInterval: time.Second,
	}
}

// Open opens a Store on a fresh database (see Config) and closes it, then drops
// the database, when the test ends.
func Open(tb testing.TB) *mongo.Store {
	tb.Helper()
	cfg := Config(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := mongo.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("mongotest: open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Logf("mongotest: close store: %v", err)
		}
	})
	return st
}

// FailInserts makes the test server drop the connection of every insert into
// collection coll of database db, as a network failure would, until the
// returned function is called: a test stages with it a writer that dies
// between two steps of a protocol. It needs the embedded server (the proxy
// sees the commands), and skips the test on a server named by EnvURI.
func FailInserts(tb testing.TB, db, coll string) (restore func()) {
	tb.Helper()
	URI(tb)
	server.mu.Lock()
	p := server.proxy
	server.mu.Unlock()
	if p == nil {
		tb.Skip("mongotest: FailInserts needs the embedded server, not " + EnvURI)
	}
	k := db + "." + coll
	p.mu.Lock()
	p.cut[k]++
	p.mu.Unlock()
	var once sync.Once
	restore = func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.cut[k]--; p.cut[k] == 0 {
				delete(p.cut, k)
			}
		})
	}
	tb.Cleanup(restore)
	return restore
}
