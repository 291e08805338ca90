// Command propagation measures how long files written into one directory take
// to appear, complete, in another: the replication latency of whatever keeps
// the two in step (scalepress file sync between two node docroots, or lsyncd).
//
//	go run ./bench/propagation -src A -dst B [-n 1000] [-size 4096] [-every 5ms] [-big 50]
package main

import (
	"bytes"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

func main() {
	src := flag.String("src", "", "directory written to")
	dst := flag.String("dst", "", "directory watched")
	n := flag.Int("n", 1000, "small files")
	size := flag.Int("size", 4096, "bytes per small file")
	every := flag.Duration("every", 5*time.Millisecond, "time between two writes")
	bigMB := flag.Int("big", 50, "size of the one big file in MiB (0: none)")
	timeout := flag.Duration("timeout", 120*time.Second, "give up after")
	uid := flag.Int("uid", -1, "chown written files to this uid (PHP's user)")
	flag.Parse()
	if *src == "" || *dst == "" {
		fmt.Fprintln(os.Stderr, "usage: propagation -src DIR -dst DIR")
		os.Exit(2)
	}
	run := fmt.Sprintf("run-%d", time.Now().UnixNano())
	srcDir, dstDir := filepath.Join(*src, run), filepath.Join(*dst, run)
	must(os.MkdirAll(srcDir, 0o755))
	if *uid >= 0 {
		os.Chown(srcDir, *uid, *uid)
	}
	// Wait for the directory itself, then watch it.
	deadline := time.Now().Add(*timeout)
	for {
		if _, err := os.Stat(dstDir); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fail("directory %s never appeared", dstDir)
		}
		time.Sleep(time.Millisecond)
	}
	w, err := fsnotify.NewWatcher()
	must(err)
	must(w.Add(dstDir))

	want := map[string]int{}
	var mu sync.Mutex
	written := map[string]time.Time{}
	arrived := map[string]time.Time{}
	check := func(name string) {
		mu.Lock()
		defer mu.Unlock()
		if _, done := arrived[name]; done {
			return
		}
		size, ok := want[name]
		if !ok {
			return
		}
		if fi, err := os.Stat(filepath.Join(dstDir, name)); err == nil && fi.Size() == int64(size) {
			arrived[name] = time.Now()
		}
	}
	go func() {
		for ev := range w.Events {
			check(filepath.Base(ev.Name))
		}
	}()

	payload := make([]byte, *size)
	for i := range *n {
		name := fmt.Sprintf("f%05d.txt", i)
		rand.Read(payload)
		mu.Lock()
		want[name] = *size
		written[name] = time.Now()
		mu.Unlock()
		writeFile(filepath.Join(srcDir, name), payload, *uid)
		time.Sleep(*every)
	}
	if *bigMB > 0 {
		name := "big.bin"
		big := bytes.Repeat([]byte("scalepress"), *bigMB<<20/10)
		mu.Lock()
		want[name] = len(big)
		written[name] = time.Now()
		mu.Unlock()
		writeFile(filepath.Join(srcDir, name), big, *uid)
	}
	for {
		mu.Lock()
		done := len(arrived) == len(want)
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		// Events can be missed for files renamed into place: look, too.
		for name := range want {
			check(name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var lat []time.Duration
	mu.Lock()
	for name, t := range arrived {
		if name != "big.bin" {
			lat = append(lat, t.Sub(written[name]))
		}
	}
	missing := len(want) - len(arrived)
	bigLat := time.Duration(0)
	if t, ok := arrived["big.bin"]; ok {
		bigLat = t.Sub(written["big.bin"])
	}
	mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	fmt.Printf("small files %d (%d B each, one every %s): p50 %s p90 %s p99 %s max %s; missing %d\n",
		len(lat), *size, *every, pct(0.5).Round(100*time.Microsecond), pct(0.9).Round(100*time.Microsecond),
		pct(0.99).Round(100*time.Microsecond), pct(1).Round(100*time.Microsecond), missing)
	if *bigMB > 0 {
		fmt.Printf("big file %d MiB: %s\n", *bigMB, bigLat.Round(time.Millisecond))
	}
	os.RemoveAll(srcDir)
}

// writeFile writes like PHP's move_uploaded_file: a temp file renamed into place.
func writeFile(path string, data []byte, uid int) {
	tmp := path + ".tmp" // excluded by both syncs
	must(os.WriteFile(tmp, data, 0o644))
	if uid >= 0 {
		os.Chown(tmp, uid, uid)
	}
	must(os.Rename(tmp, path))
}

func must(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "propagation: "+format+"\n", args...)
	os.Exit(1)
}
