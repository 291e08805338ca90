// Command releaseprobe measures one code change on a running stack: it
// probes every node directly (uncached) as fast as -conc workers per node
// can, runs the command that makes the change, and reports per node when it
// first served the new code, and for how long it served a mix of old and
// new (a body "A B" whose two halves differ, as the mixcheck plugin's
// check.php prints them) or an error; meanwhile it sends uncached load to
// the edge and counts its failures.
//
//	go run ./bench/releaseprobe -nodes 127.87.1.1:8080,127.87.1.2:8080 \
//	    -path /wp-content/plugins/mixcheck/check.php -want '5 5' \
//	    -load 'http://127.87.0.1:8080/?s=bench' -rate 20 -- scalepress update plugin mixcheck --from v5.zip
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type node struct {
	addr                  string
	mu                    sync.Mutex
	requests, mixes, errs int
	firstBad, lastBad     time.Time
	firstWant             time.Time
	example               string
}

func (n *node) record(body string, status int, err error, want string, pair bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.requests++
	now := time.Now()
	bad := ""
	switch {
	case err != nil:
		n.errs++
		bad = err.Error()
	case status != http.StatusOK:
		n.errs++
		bad = fmt.Sprintf("status %d %.60q", status, body)
	case pair:
		a, b, ok := strings.Cut(strings.TrimSpace(body), " ")
		if !ok || a != b {
			n.mixes++
			bad = fmt.Sprintf("mix %.60q", body)
		}
	}
	if bad != "" {
		if n.firstBad.IsZero() {
			n.firstBad = now
			n.example = bad
		}
		n.lastBad = now
		return
	}
	if n.firstWant.IsZero() && strings.Contains(body, want) {
		n.firstWant = now
	}
}

func main() {
	nodes := flag.String("nodes", "", "node addresses, comma-separated")
	path := flag.String("path", "/", "path probed on every node")
	want := flag.String("want", "", "a node serves the new code once a body holds this")
	pair := flag.Bool("pair", false, "a body is \"A B\": a mix when A != B")
	conc := flag.Int("conc", 2, "probing workers per node")
	load := flag.String("load", "", "URL of uncached load through the edge")
	rate := flag.Int("rate", 20, "load requests per second")
	timeout := flag.Duration("timeout", 3*time.Minute, "give up after")
	flag.Parse()
	cmdArgs := flag.Args()
	if *nodes == "" || *want == "" || len(cmdArgs) == 0 {
		fmt.Fprintln(os.Stderr, "usage: releaseprobe -nodes A,B -path P -want W [-pair] [-load URL] -- COMMAND...")
		os.Exit(2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var ns []*node
	var wg sync.WaitGroup
	for _, a := range strings.Split(*nodes, ",") {
		n := &node{addr: a}
		ns = append(ns, n)
		for range *conc {
			wg.Go(func() {
				for ctx.Err() == nil {
					resp, err := client.Get("http://" + a + *path)
					var body []byte
					status := 0
					if err == nil {
						body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
						resp.Body.Close()
						status = resp.StatusCode
					}
					if ctx.Err() != nil {
						return
					}
					n.record(string(body), status, err, *want, *pair)
				}
			})
		}
	}
	var loadOK, loadFail atomic.Int64
	var failEx atomic.Value
	if *load != "" {
		wg.Go(func() {
			t := time.NewTicker(time.Second / time.Duration(*rate))
			defer t.Stop()
			var lw sync.WaitGroup
			defer lw.Wait()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				u := fmt.Sprintf("%s-%d", *load, i)
				lw.Go(func() {
					resp, err := client.Get(u)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							loadOK.Add(1)
							return
						}
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					loadFail.Add(1)
					failEx.CompareAndSwap(nil, u+": "+err.Error())
				})
			}
		})
	}
	time.Sleep(time.Second) // the old code, probed
	t0 := time.Now()
	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	out, cerr := cmd.CombinedOutput()
	cmdTook := time.Since(t0)
	deadline := t0.Add(*timeout)
	for {
		done := true
		for _, n := range ns {
			n.mu.Lock()
			done = done && !n.firstWant.IsZero()
			n.mu.Unlock()
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // the new code, probed
	cancel()
	wg.Wait()
	status := "ok"
	if cerr != nil {
		status = fmt.Sprintf("failed (%v): %s", cerr, strings.TrimSpace(string(out)))
	}
	fmt.Printf("command %.3f s, %s\n", cmdTook.Seconds(), status)
	var last time.Duration
	for _, n := range ns {
		at := "never"
		if !n.firstWant.IsZero() {
			d := n.firstWant.Sub(t0)
			last = max(last, d)
			at = fmt.Sprintf("%.3f s", d.Seconds())
		}
		window := "0 s (never)"
		if !n.firstBad.IsZero() {
			window = fmt.Sprintf("%.3f s (first %s)", n.lastBad.Sub(n.firstBad).Seconds(), n.example)
		}
		fmt.Printf("node %s: new code from %s after the command began; %d probes, %d mixed, %d errors; bad window %s\n",
			n.addr, at, n.requests, n.mixes, n.errs, window)
	}
	fmt.Printf("every node on the new code: %.3f s after the command began\n", last.Seconds())
	if *load != "" {
		ex, _ := failEx.Load().(string)
		fmt.Printf("load through the edge: %d ok, %d failed %s\n", loadOK.Load(), loadFail.Load(), ex)
	}
}
