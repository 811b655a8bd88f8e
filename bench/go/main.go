// Go peer of bench/skein_core.cpp and bench/skein_prim.cpp: goroutines with
// channels, sync.Mutex, sync.WaitGroup and sync/atomic.
// Usage: go_core WORKLOAD
//
// Runtime core (bench/skein_core.cpp):
//
//	skynet  1M leaves, fan-out 10, every node a goroutine (the classic
//	        skynet: an unbuffered result channel per node)
//	spawn   1M goroutines started by main, joined with a WaitGroup
//	fib     fib(30), every call a goroutine (results over a channel)
//	parked  1M goroutines blocked on one channel, released by close(), joined
//
// Primitives (bench/skein_prim.cpp; prim.go): queue_thr = queue_coro,
// queue4_thr = queue4_coro, pingpong_thr = pingpong_coro (Go has only
// goroutines: the thread and coroutine rows run the same program), mutex,
// mutex2, atomic, atomic2, waitgroup, pool.
//
// Echo over loopback (bench/skein_io.cpp; io.go): echo.
//
// Runs with the default GOMAXPROCS (the CPUs this process may use). Prints the
// same one-line report as the C++ programs; peak RSS is VmHWM from
// /proc/self/status. Exits 1 on a wrong result.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	skynetLeaves = 1000000
	skynetDiv    = 10
	spawnTasks   = 1000000
	fibN         = 30
	parkedTasks  = 1000000
)

const usage = "usage: go_core WORKLOAD   (one of: skynet spawn fib parked " + primWorkloads + " " + ioWorkloads + ")"

func skynet(c chan<- int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	sum := 0
	for i := 0; i < div; i++ {
		go skynet(rc, num+i*(size/div), size/div, div)
	}
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func fib(n int) int {
	if n < 2 {
		return n
	}
	c := make(chan int, 2)
	go func() { c <- fib(n - 1) }()
	go func() { c <- fib(n - 2) }()
	return <-c + <-c
}

// statusMB reads a "Vm...:   N kB" line of /proc/self/status, in MB.
func statusMB(key string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, key+":") {
			fields := strings.Fields(line[len(key)+1:])
			if len(fields) > 0 {
				kb, _ := strconv.ParseFloat(fields[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func skynetTasks(leaves, div int) int {
	t := 0
	for level := leaves; level >= 1; level /= div {
		t += level
	}
	return t
}

func fibValue(n int) int {
	a, b := 0, 1
	for i := 0; i < n; i++ {
		a, b = b, a+b
	}
	return a
}

func countDone(done []byte) int {
	c := 0
	for _, d := range done {
		c += int(d)
	}
	return c
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	w := os.Args[1]
	var n, tasks, result, expected int
	latUs := -1.0
	base := statusMB("VmRSS")
	t0 := time.Now()
	var elapsed time.Duration

	switch w {
	case "skynet":
		n, tasks = skynetLeaves, skynetTasks(skynetLeaves, skynetDiv)
		c := make(chan int)
		go skynet(c, 0, n, skynetDiv)
		result = <-c
		elapsed = time.Since(t0)
		expected = n * (n - 1) / 2
	case "spawn":
		n, tasks = spawnTasks, spawnTasks
		done := make([]byte, n)
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func(i int) {
				done[i] = 1
				wg.Done()
			}(i)
		}
		wg.Wait()
		elapsed = time.Since(t0)
		result, expected = countDone(done), n
	case "fib":
		n, tasks = fibN, 2*fibValue(fibN+1)-1
		result = fib(n)
		elapsed = time.Since(t0)
		expected = fibValue(n)
	case "parked":
		n, tasks = parkedTasks, parkedTasks
		gate := make(chan struct{})
		var parked, resumed int64
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				atomic.AddInt64(&parked, 1)
				<-gate
				atomic.AddInt64(&resumed, 1)
				wg.Done()
			}()
		}
		for atomic.LoadInt64(&parked) < int64(n) {
			time.Sleep(200 * time.Microsecond)
		}
		close(gate)
		wg.Wait()
		elapsed = time.Since(t0)
		result, expected = int(atomic.LoadInt64(&resumed)), n
	default:
		var ok bool
		n, tasks, result, expected, latUs, ok = runPrim(w)
		elapsed = time.Since(t0)
		if !ok {
			n, tasks, result, expected, latUs, elapsed, ok = runIO(w)
		}
		if !ok {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
	}

	ok := 0
	if result == expected {
		ok = 1
	}
	lat := ""
	if latUs >= 0 {
		lat = fmt.Sprintf(" lat_us=%.3f", latUs)
	}
	if p99Us >= 0 {
		lat += fmt.Sprintf(" p99_us=%.3f", p99Us)
	}
	fmt.Printf("workload=%s peer=go ms=%.3f rss_mb=%.1f base_mb=%.1f n=%d tasks=%d result=%d expected=%d ok=%d threads=%d version=%s%s\n",
		w, float64(elapsed.Nanoseconds())/1e6, statusMB("VmHWM"), base, n, tasks, result, expected, ok,
		runtime.GOMAXPROCS(0), runtime.Version(), lat)
	if ok == 0 {
		fmt.Fprintf(os.Stderr, "go/%s: WRONG RESULT %d (expected %d)\n", w, result, expected)
		os.Exit(1)
	}
}
