package dbrouter

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// echoServer answers every line with its name and the line.
func echoServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					io.WriteString(c, name+":"+s.Text()+"\n")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startRouter(t *testing.T, members []string) (*Router, string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = freeAddr(t)
	cfg.Members = members
	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for range 100 {
		if c, err := net.Dial("tcp", cfg.Addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r, cfg.Addr
}

func roundTrip(t *testing.T, c net.Conn, msg string) (string, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestRelaysToFirstAnsweringMember(t *testing.T) {
	dead := freeAddr(t) // nothing listens here
	a := echoServer(t, "a")
	_, addr := startRouter(t, []string{dead, a})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := roundTrip(t, c, "hello")
	if err != nil || got != "a:hello" {
		t.Fatalf("got %q, %v; want a:hello", got, err)
	}
}

func TestMemberLeavingClosesItsConnections(t *testing.T) {
	a, b := echoServer(t, "a"), echoServer(t, "b")
	r, addr := startRouter(t, []string{a, b})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, _ := roundTrip(t, c, "1"); got != "a:1" {
		t.Fatalf("first answer %q", got)
	}
	r.SetMembers([]string{b})
	if _, err := roundTrip(t, c, "2"); err == nil {
		t.Fatal("connection to the member that left still works")
	}
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(t, c2, "3"); got != "b:3" {
		t.Fatalf("new connection got %q, %v; want b:3", got, err)
	}
}

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "members") {
		t.Errorf("no members: %v", err)
	}
	cfg.Members = []string{"127.0.0.1:1"}
	cfg.Addr = "nope"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "addr") {
		t.Errorf("bad addr: %v", err)
	}
}
