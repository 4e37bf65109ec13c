// Package cputime measures CPU time for benchmarks that report their ratio
// to a crypto floor by CPU rather than by wall clock, which other work on a
// shared machine distorts (docs/performance.md).
package cputime

import (
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Now returns the process's user and system CPU time so far.
func Now() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PerOp returns the CPU time of one op, run n times on each of GOMAXPROCS
// goroutines at once.
func PerOp(n int, op func()) time.Duration {
	p := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	start := Now()
	for range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				op()
			}
		}()
	}
	wg.Wait()
	return (Now() - start) / time.Duration(n*p)
}
