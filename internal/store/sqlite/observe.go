package sqlite

import (
	"runtime"
	"strings"
	"sync"
	"time"
)

// observed reports a finished transaction to Config.Observe.
func (s *Store) observed(op string, start time.Time) {
	s.observe(op, time.Since(start))
}

// opNames caches opName's answer per call site: the stack walk that finds the
// program counter is cheap next to a transaction, turning it into a name is not.
var opNames sync.Map // uintptr → string

// opName names the Store method that called read or write (which call opName):
// every exported method runs its one transaction through them, so naming the
// caller times each method without a line of code in it. A helper of the
// package that calls read or write is named by its own (unexported) name.
func opName() string {
	var pc [1]uintptr
	// Skip runtime.Callers, opName and read/write: the frame is their caller.
	if runtime.Callers(3, pc[:]) == 0 {
		return "unknown"
	}
	if name, ok := opNames.Load(pc[0]); ok {
		return name.(string)
	}
	frame, _ := runtime.CallersFrames(pc[:]).Next()
	name := methodName(frame.Function)
	opNames.Store(pc[0], name)
	return name
}

// methodName turns a function's full name, such as
// "github.com/fieldsync/fieldsync/internal/store/sqlite.(*Store).GetUser" or a
// closure in it ("….(*Store).GetUser.func1"), into the method's name, "GetUser".
func methodName(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		fn = fn[i+1:] // "sqlite.(*Store).GetUser.func1"
	}
	if _, after, ok := strings.Cut(fn, ")."); ok {
		fn = after // "GetUser.func1"
	} else if _, after, ok := strings.Cut(fn, "."); ok {
		fn = after // a function of the package: "helper.func1"
	}
	name, _, _ := strings.Cut(fn, ".")
	if name == "" {
		return "unknown"
	}
	return name
}
