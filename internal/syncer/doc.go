// Package syncer is the pure core of the sync engine (protocol.md §3): canonical
// JSON, deterministic revision ids, the field-level three-way merge and the three
// conflict policies.
//
// Everything here is a deterministic function of its arguments: no clock, no
// randomness, no storage, no I/O. Two server instances that see the same push
// therefore compute the same revision, the same merge and the same conflict
// entries, which is what makes retries and concurrent instances safe. The package
// imports only the standard library and internal/domain, so the sync service and
// both stores can use it without an import cycle, and its tests (table tests and
// fuzz tests) need nothing else.
package syncer
