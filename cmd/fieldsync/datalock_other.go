//go:build !unix

package main

import "errors"

// dataLockFile: see datalock_unix.go.
const dataLockFile = "fieldsync.lock"

var errDataDirInUse = errors.New("in use")

// lockDataDir does nothing where flock does not exist: fieldsync restore
// cannot tell there whether a server uses the store, and says so in the README.
func lockDataDir(dir string, exclusive bool) (unlock func(), err error) {
	return func() {}, nil
}
