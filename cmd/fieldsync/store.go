package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// storeParams is what a backend's constructor is given.
type storeParams struct {
	// Setting is FIELDSYNC_STORE as given: "sqlite" or a connection URI.
	Setting string
	DataDir string
	Logger  *slog.Logger
	// Observe times the store's operations (httpapi.StoreMetrics); nil when
	// nothing is measured (fieldsync keys rotate).
	Observe func(op string, took time.Duration)
}

// storeBackend opens one kind of store.
type storeBackend struct {
	// usage says how FIELDSYNC_STORE selects it, for error messages.
	usage string
	open  func(ctx context.Context, p storeParams) (domain.Store, error)
}

// storeBackends maps a store kind (see storeKind) to its backend: adding a
// backend is adding an entry; validation and its message follow.
var storeBackends = map[string]storeBackend{
	"sqlite":         {usage: `"sqlite"`, open: openSQLite},
	"mongodb://":     {usage: "a mongodb:// URI", open: openMongo},
	"mongodb+srv://": {usage: "a mongodb+srv:// URI", open: openMongo},
}

// storeKind is the key of storeBackends that setting selects: the scheme of a
// URI with its "://", else the setting itself.
func storeKind(setting string) string {
	if i := strings.Index(setting, "://"); i >= 0 {
		return setting[:i+3]
	}
	return setting
}

// backendFor returns the backend setting selects, or an error that names the
// choices (and never the password of a URI).
func backendFor(setting string) (storeBackend, error) {
	if b, ok := storeBackends[storeKind(setting)]; ok {
		return b, nil
	}
	var choices []string
	for _, b := range storeBackends {
		choices = append(choices, b.usage)
	}
	slices.Sort(choices)
	return storeBackend{}, fmt.Errorf("store: %q is not one of %s", redactURI(setting), strings.Join(choices, ", "))
}

func openSQLite(ctx context.Context, p storeParams) (domain.Store, error) {
	path := filepath.Join(p.DataDir, "fieldsync.db")
	p.Logger.Info("opening store", "store", "sqlite", "path", path)
	return sqlite.OpenConfig(ctx, sqlite.Config{Path: path, Observe: p.Observe})
}

func openMongo(ctx context.Context, p storeParams) (domain.Store, error) {
	p.Logger.Info("opening store", "store", "mongodb", "uri", redactURI(p.Setting))
	return mongo.Open(ctx, mongo.Config{URI: p.Setting, Logger: p.Logger, Observe: p.Observe})
}
