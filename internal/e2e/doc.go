// Package e2e holds the end-to-end tests of fieldsync: whole server stacks
// (identity, forms, records, the HTTP router and middleware) on real stores, two
// of them on one database where the protocol's guarantees span instances, the
// real binary under SIGTERM, and the throughput benchmarks of push and pull. It
// has no code of its own besides this comment; everything is in its tests.
package e2e
