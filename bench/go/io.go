// The "echo over loopback" workload (bench/io_common.hpp): an echo server
// and ioConnections clients in this program, on 127.0.0.1, with Go's net
// package — a goroutine per accepted connection and one per client
// (TCP_NODELAY is Go's default). Each client does ioTrips round trips of an
// ioMsg-byte message, each timed; lat_us = the median, p99_us = the 99th
// percentile over all of them.
package main

import (
	"bytes"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	ioWorkloads   = "echo"
	ioConnections = 100
	ioTrips       = 1000
	ioMsg         = 64
)

// p99Us is the 99th percentile round trip of the io workload (µs); -1 otherwise.
var p99Us = -1.0

func fillMsg(m []byte, conn, trip int) {
	for i := range m {
		m[i] = byte((conn*131 + trip*7 + i) & 0xff)
	}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	r := int(q * float64(len(sorted)))
	if r >= len(sorted) {
		r = len(sorted) - 1
	}
	return sorted[r]
}

// echo runs the workload; returns the round trips whose echo matched, the
// messages the server echoed, the time from starting the clients until the
// last one is done, and the median and p99 round trip (µs).
func echo() (ok, echoed int, elapsed time.Duration, p50, p99 float64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	var served int64
	go func() {
		for i := 0; i < ioConnections; i++ {
			c, err := ln.Accept()
			if err != nil {
				panic(err)
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, ioMsg)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return // io.EOF: the client is done
					}
					if _, err := c.Write(buf); err != nil {
						panic(err)
					}
					atomic.AddInt64(&served, 1)
				}
			}(c)
		}
	}()
	addr := ln.Addr().String()
	lat := make([]float64, ioConnections*ioTrips)
	var good int64
	var wg sync.WaitGroup
	wg.Add(ioConnections)
	t0 := time.Now()
	for id := 0; id < ioConnections; id++ {
		go func(id int) {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				panic(err)
			}
			out, in := make([]byte, ioMsg), make([]byte, ioMsg)
			n := 0
			for t := 0; t < ioTrips; t++ {
				fillMsg(out, id, t)
				s := time.Now()
				if _, err := c.Write(out); err != nil {
					panic(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					panic(err)
				}
				lat[id*ioTrips+t] = float64(time.Since(s).Nanoseconds()) / 1e3
				if bytes.Equal(in, out) {
					n++
				}
			}
			c.Close()
			atomic.AddInt64(&good, int64(n))
		}(id)
	}
	wg.Wait()
	elapsed = time.Since(t0)
	ln.Close()
	// The sessions end at their clients' EOF: wait for the last echoes to be counted.
	for deadline := time.Now().Add(5 * time.Second); atomic.LoadInt64(&served) < int64(len(lat)) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	sort.Float64s(lat)
	return int(good), int(atomic.LoadInt64(&served)), elapsed, quantile(lat, 0.5), quantile(lat, 0.99)
}

// runIO runs one io workload; ok is false for an unknown name.
func runIO(w string) (n, tasks, result, expected int, latUs float64, elapsed time.Duration, ok bool) {
	if w != "echo" {
		return 0, 0, 0, 0, -1, 0, false
	}
	good, echoed, el, p50, p99 := echo()
	n, tasks, expected = ioConnections, ioConnections*ioTrips, ioConnections*ioTrips
	result = good
	if echoed != expected {
		result = -echoed
	}
	p99Us = p99
	return n, tasks, result, expected, p50, el, true
}
