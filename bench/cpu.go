package bench

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where the figures were taken.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpuModel"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	// LoadStart and LoadEnd are the 1-, 5- and 15-minute load averages
	// when the run began and ended.
	LoadStart [3]float64 `json:"loadStart"`
	LoadEnd   [3]float64 `json:"loadEnd"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// loadAvg reads /proc/loadavg; zeros where it cannot.
func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

// CPUUse is the CPU time spent during one phase, in seconds.
type CPUUse struct {
	// Server is this process: router, store client, meters, runtime.
	Server float64 `json:"server"`
	// Client is the load client's process (zero when it ran in-process).
	Client float64 `json:"client"`
	// Postgres is every process named postgres (the database server's
	// backends), zero on SQLite.
	Postgres float64 `json:"postgres"`
	// Machine is the whole machine's busy time (from /proc/stat), which
	// includes anything else running on it.
	Machine float64 `json:"machine"`
	// Wall is the phase's elapsed time.
	Wall float64 `json:"wall"`
}

// cpuMark is a reading of the counters CPUUse is the difference of.
type cpuMark struct {
	self, postgres, machine time.Duration
	at                      time.Time
}

func markCPU() cpuMark {
	return cpuMark{self: selfCPU(), postgres: processCPU("postgres"), machine: machineBusy(), at: time.Now()}
}

func (m cpuMark) since(client time.Duration) CPUUse {
	n := markCPU()
	return CPUUse{Server: (n.self - m.self).Seconds(), Client: client.Seconds(), Postgres: (n.postgres - m.postgres).Seconds(),
		Machine: (n.machine - m.machine).Seconds(), Wall: n.at.Sub(m.at).Seconds()}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports.
const clockTick = 100

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTick }

// machineBusy is the machine's total non-idle CPU time from /proc/stat.
func machineBusy() time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text()) // cpu user nice system idle iowait irq softirq steal ...
	var busy uint64
	for i, s := range fields {
		if i == 0 || i == 4 || i == 5 || i > 8 {
			continue
		}
		v, _ := strconv.ParseUint(s, 10, 64)
		busy += v
	}
	return ticks(busy)
}

// processCPU adds up user and system time of every process whose command
// name is comm.
func processCPU(comm string) time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total uint64
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open || string(b[open+1:end]) != comm {
			continue
		}
		f := strings.Fields(string(b[end+1:])) // state is field 3 of stat, f[0]
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseUint(f[11], 10, 64) // utime, field 14
		s, _ := strconv.ParseUint(f[12], 10, 64) // stime, field 15
		total += u + s
	}
	return ticks(total)
}
