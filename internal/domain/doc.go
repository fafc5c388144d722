// Package domain holds the types of fieldsync, the error vocabulary shared by every
// layer, and the store contract: the interfaces both storage backends (SQLite and
// MongoDB) implement and that the conformance suite in internal/store/storetest
// checks. It imports nothing of ours, so services and adapters depend on it and
// never on each other.
//
// One package instead of one per concern: the store contract spans every concern
// (a backend implements all of it at once), and splitting the types would force the
// backends to import every service package.
package domain

// Times: services store every time in UTC truncated to milliseconds (MongoDB keeps
// milliseconds), so a value read back equals the value written.
