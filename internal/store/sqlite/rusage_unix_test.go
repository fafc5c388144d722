//go:build unix

package sqlite

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user and system), so the
// benchmarks can report throughput per CPU second: on a shared machine wall time
// says as much about the neighbours as about the store.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
