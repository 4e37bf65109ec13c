package bench

import (
	"bufio"
	"bytes"
	"os"
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
	// Server is this process (router, store client, meters, runtime) and
	// the other router instances' processes (Config.Routers).
	Server float64 `json:"server"`
	// Routers is the other router instances' processes alone, counted in
	// Server too; zero with one router.
	Routers float64 `json:"routers,omitempty"`
	// Client is the load client's process (zero when it ran in-process).
	Client float64 `json:"client"`
	// Postgres is the PostgreSQL backends serving the bench's database
	// (found in pg_stat_activity), zero on SQLite.
	Postgres float64 `json:"postgres"`
	// Machine is the whole machine's busy time (from /proc/stat), which
	// includes anything else running on it.
	Machine float64 `json:"machine"`
	// Wall is the phase's elapsed time.
	Wall float64 `json:"wall"`
}

// cpuMark is a reading of the counters CPUUse is the difference of.
type cpuMark struct {
	self, machine time.Duration
	backends      map[int]time.Duration // PostgreSQL backend pid -> CPU time
	at            time.Time
}

// markCPU reads the counters; pids, when set, lists the PostgreSQL
// backends to follow.
func markCPU(pids func() []int) cpuMark {
	m := cpuMark{self: selfCPU(), machine: machineBusy(), at: time.Now(), backends: map[int]time.Duration{}}
	if pids != nil {
		for _, pid := range pids() {
			if d, ok := pidCPU(pid); ok {
				m.backends[pid] = d
			}
		}
	}
	return m
}

// since returns the CPU used from m until now; a backend that started in
// between counts from zero.
func (m cpuMark) since(client time.Duration, pids func() []int) CPUUse {
	n := markCPU(pids)
	var pg time.Duration
	for pid, d := range n.backends {
		pg += d - m.backends[pid]
	}
	return CPUUse{Server: (n.self - m.self).Seconds(), Client: client.Seconds(), Postgres: pg.Seconds(),
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

// pidCPU returns the user plus system time of process pid.
func pidCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[end+1:])) // f[0] is field 3 of stat, the state
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64) // utime, field 14
	s, err2 := strconv.ParseUint(f[12], 10, 64) // stime, field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return ticks(u + s), true
}
