package redisd

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	got := string(Render(Config{Addr: "127.0.3.1:6379", Dir: "/s/redis", MaxMemory: "64mb"}))
	for _, want := range []string{"bind 127.0.3.1\n", "port 6379\n", "save \"\"\n", "appendonly no\n", "maxmemory 64mb\n", "maxmemory-policy allkeys-lru\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("redis.conf lacks %q", want)
		}
	}
}

func TestPing(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		ok     bool
	}{
		{"pong", "+PONG\r\n", true},
		{"error", "-NOAUTH Authentication required.\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				bufio.NewReader(c).ReadString('\n')
				c.Write([]byte(tt.answer))
			}()
			err = Ping(t.Context(), ln.Addr().String())
			if (err == nil) != tt.ok {
				t.Errorf("Ping = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
