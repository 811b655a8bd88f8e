// The primitives workloads (bench/skein_prim.cpp, bench/prim_common.hpp):
// the same sizes and shapes with channels, sync.Mutex, sync/atomic and
// sync.WaitGroup.
package main

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	primWorkloads  = "queue_thr queue_coro queue4_thr queue4_coro pingpong_thr pingpong_coro mutex mutex2 atomic atomic2 waitgroup pool pingpong_unbuf select2 timers"
	queueItems     = 10000000
	queueCap       = 100
	pingPongTrips  = 50000
	lockOps        = 10000000
	atomicOps      = 20000000
	waitGroupTasks = 1000000
	poolItems      = 1000000
	poolWorkers    = 4
	poolDepth      = 8
	selectItems    = 2000000
	timers         = 1000000
)

func sumBelow(n int) int { return n * (n - 1) / 2 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return -1
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

// mpmc: `producers` goroutines send n/producers values each (together
// 0..n-1) into a channel of capacity queueCap; `consumers` receive
// n/consumers each. Returns the sum received.
func mpmc(producers, consumers, n int) int {
	c := make(chan int, queueCap)
	var sum int64
	var wg sync.WaitGroup
	perP, perC := n/producers, n/consumers
	wg.Add(producers + consumers)
	for k := 0; k < consumers; k++ {
		go func() {
			s := 0
			for i := 0; i < perC; i++ {
				s += <-c
			}
			atomic.AddInt64(&sum, int64(s))
			wg.Done()
		}()
	}
	for p := 0; p < producers; p++ {
		go func(p int) {
			for i := 0; i < perP; i++ {
				c <- p*perP + i
			}
			wg.Done()
		}(p)
	}
	wg.Wait()
	return int(atomic.LoadInt64(&sum))
}

// pingPong: main sends i over an unbuffered channel, an echo goroutine sends
// back i+1 over another. Returns the correct echoes and the median round trip (µs).
func pingPong(trips int) (int, float64) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for i := 0; i < trips; i++ {
			pong <- (<-ping) + 1
		}
	}()
	rtt := make([]float64, 0, trips)
	good := 0
	t := time.Now()
	for i := 0; i < trips; i++ {
		ping <- i
		if <-pong == i+1 {
			good++
		}
		now := time.Now()
		rtt = append(rtt, float64(now.Sub(t).Nanoseconds())/1e3)
		t = now
	}
	return good, median(rtt)
}

// lockLoop: `workers` goroutines (1: main) each do n/workers Lock; counter++; Unlock.
func lockLoop(workers, n int) int {
	var mu sync.Mutex
	counter := 0
	per := n / workers
	body := func() {
		for i := 0; i < per; i++ {
			mu.Lock()
			counter++
			mu.Unlock()
		}
	}
	if workers == 1 {
		body()
		return counter
	}
	var wg sync.WaitGroup
	wg.Add(workers)
	for k := 0; k < workers; k++ {
		go func() { body(); wg.Done() }()
	}
	wg.Wait()
	return counter
}

// addLoop: `workers` goroutines (1: main) each do n/workers atomic.AddInt64(&v, 1).
func addLoop(workers, n int) int {
	var v int64
	per := n / workers
	body := func() {
		for i := 0; i < per; i++ {
			atomic.AddInt64(&v, 1)
		}
	}
	if workers == 1 {
		body()
		return int(atomic.LoadInt64(&v))
	}
	var wg sync.WaitGroup
	wg.Add(workers)
	for k := 0; k < workers; k++ {
		go func() { body(); wg.Done() }()
	}
	wg.Wait()
	return int(atomic.LoadInt64(&v))
}

// fanIn: main starts n goroutines that each count themselves and call wg.Done(), then wg.Wait().
func fanIn(n int) int {
	var wg sync.WaitGroup
	var ran int64
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&ran, 1)
			wg.Done()
		}()
	}
	wg.Wait()
	return int(atomic.LoadInt64(&ran))
}

// workerPool: poolWorkers goroutines take items from a channel of capacity
// poolDepth; main submits 0..n-1, closes the channel and waits.
func workerPool(n int) int {
	c := make(chan int, poolDepth)
	var sum int64
	var wg sync.WaitGroup
	wg.Add(poolWorkers)
	for k := 0; k < poolWorkers; k++ {
		go func() {
			for v := range c {
				atomic.AddInt64(&sum, int64(v))
			}
			wg.Done()
		}()
	}
	for i := 0; i < n; i++ {
		c <- i
	}
	close(c)
	wg.Wait()
	return int(atomic.LoadInt64(&sum))
}

// selectTwo: two producers, each into its own channel of capacity 100; one
// consumer receives every item through a select over both.
func selectTwo(n int) int {
	a, b := make(chan int, queueCap), make(chan int, queueCap)
	go func() {
		for i := 0; i < n/2; i++ {
			a <- i
		}
	}()
	go func() {
		for i := n / 2; i < n; i++ {
			b <- i
		}
	}()
	sum := 0
	for i := 0; i < n; i++ {
		select {
		case v := <-a:
			sum += v
		case v := <-b:
			sum += v
		}
	}
	return sum
}

// timerChurn: n timers started and stopped (an hour each: none fires).
func timerChurn(n int) int {
	stopped := 0
	for i := 0; i < n; i++ {
		t := time.NewTimer(time.Hour)
		if t.Stop() {
			stopped++
		}
	}
	return stopped
}

// runPrim runs one primitives workload; ok is false for an unknown name.
func runPrim(w string) (n, tasks, result, expected int, latUs float64, ok bool) {
	latUs = -1
	switch w {
	case "queue_thr", "queue_coro":
		n = queueItems
		result, expected = mpmc(1, 1, n), sumBelow(n)
	case "queue4_thr", "queue4_coro":
		n = queueItems
		result, expected = mpmc(4, 4, n), sumBelow(n)
	case "pingpong_thr", "pingpong_coro", "pingpong_unbuf":
		n = pingPongTrips
		result, latUs = pingPong(n)
		expected = n
	case "mutex":
		n = lockOps
		result, expected = lockLoop(1, n), n
	case "mutex2":
		n = lockOps
		result, expected = lockLoop(2, n), n
	case "atomic":
		n = atomicOps
		result, expected = addLoop(1, n), n
	case "atomic2":
		n = atomicOps
		result, expected = addLoop(2, n), n
	case "waitgroup":
		n = waitGroupTasks
		result, expected = fanIn(n), n
	case "select2":
		n = selectItems
		result, expected = selectTwo(n), sumBelow(n)
	case "timers":
		n = timers
		result, expected = timerChurn(n), n
	case "pool":
		n = poolItems
		result, expected = workerPool(n), sumBelow(n)
	default:
		return 0, 0, 0, 0, -1, false
	}
	return n, n, result, expected, latUs, true
}
