//go:build unix

package e2e

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the test process has used so far,
// for benchmark figures that a busy machine distorts less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
