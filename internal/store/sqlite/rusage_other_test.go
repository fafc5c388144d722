//go:build !unix

package sqlite

import "time"

// processCPU is not measured here; the benchmarks then skip their CPU metric.
func processCPU() time.Duration { return 0 }
