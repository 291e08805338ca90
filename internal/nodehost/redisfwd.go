package nodehost

// A node's way to a redis that a scheduler may move: PHP connects to a unix
// socket in the node's run directory (wp-config's WP_REDIS_HOST, the same
// for every node), and node-host relays each connection to the address the
// scheduler last rendered (docs/adr/0025-roles-on-nomad.md).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// RedisSocket is the socket's path relative to the docroot's wp-config.php
// (wordpress.Config.RedisSocket): the node's run directory is the
// docroot's sibling.
const RedisSocket = "../run/redis.sock"

// RedisForwarder relays connections on a unix socket to redis at the
// address named by the first line of From (a base URL, as the template of a
// Nomad service renders it: http://IP:PORT), read for each connection.
type RedisForwarder struct {
	Socket string // the unix socket to listen on
	From   string // the rendered file
	// GID may connect (the PHP user's group; -1: the owner only).
	GID    int
	Logger *slog.Logger
	// DialTimeout bounds reaching redis (0: 2 s).
	DialTimeout time.Duration
}

// target is redis's address now.
func (f RedisForwarder) target() (string, error) {
	b, err := os.ReadFile(f.From)
	if err != nil {
		return "", fmt.Errorf("redis address: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		u, err := url.Parse(line)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("redis address: bad line %q", line)
		}
		return u.Host, nil
	}
	return "", errors.New("redis address: none registered")
}

// Listen makes the socket (a stale one is removed) with mode 0660 and
// group GID.
func (f RedisForwarder) Listen() (net.Listener, error) {
	os.Remove(f.Socket)
	ln, err := net.Listen("unix", f.Socket)
	if err != nil {
		return nil, fmt.Errorf("redis forwarder: %w", err)
	}
	if f.GID >= 0 {
		if err := os.Chown(f.Socket, -1, f.GID); err != nil {
			ln.Close()
			return nil, fmt.Errorf("redis forwarder: %w", err)
		}
	}
	if err := os.Chmod(f.Socket, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("redis forwarder: %w", err)
	}
	return ln, nil
}

// Serve relays every connection on ln until ctx ends, then closes ln and
// every open connection and returns once their goroutines ended.
func (f RedisForwarder) Serve(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) bool {
		mu.Lock()
		defer mu.Unlock()
		if add && ctx.Err() != nil {
			return false
		}
		if add {
			open[c] = true
		} else {
			delete(open, c)
		}
		return true
	}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	for {
		in, err := ln.Accept()
		if err != nil {
			break
		}
		if !track(in, true) {
			in.Close()
			break
		}
		wg.Go(func() {
			defer track(in, false)
			defer in.Close()
			f.relay(ctx, in, track)
		})
	}
	wg.Wait()
}

// relay connects in to redis and copies both ways until either side ends.
func (f RedisForwarder) relay(ctx context.Context, in net.Conn, track func(net.Conn, bool) bool) {
	addr, err := f.target()
	if err != nil {
		f.Logger.Warn("redis forwarder", "err", err)
		return
	}
	d := net.Dialer{Timeout: f.DialTimeout}
	if d.Timeout == 0 {
		d.Timeout = 2 * time.Second
	}
	out, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		f.Logger.Warn("redis forwarder", "redis", addr, "err", err)
		return
	}
	if !track(out, true) {
		out.Close()
		return
	}
	defer track(out, false)
	defer out.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(out, in)
		out.Close() // the client went away: so does redis's side
	}()
	io.Copy(in, out)
	in.Close()
	<-done
}
