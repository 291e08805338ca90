package fastcgi

import (
	"fmt"
	"net/http"
	"time"
)

// Config configures a Client.
type Config struct {
	// Network is "unix" or "tcp".
	Network string
	// Address is the socket path (unix) or host:port (tcp).
	Address string
	// MaxConns is a hard cap on simultaneously open connections. Set it to
	// php-fpm's pm.max_children: every open connection, busy or idle, holds a
	// php-fpm child, so a connection beyond max_children would wait in the
	// listen backlog for a child that an idle keep-alive connection holds.
	// Do blocks, respecting its context, while all connections are busy.
	MaxConns int
	// MaxIdle is the number of idle keep-alive connections kept (<= MaxConns).
	// 0 closes every connection after its request.
	MaxIdle int
	// IdleTimeout closes connections that have been idle for longer.
	IdleTimeout time.Duration
	// DialTimeout bounds connecting to php-fpm.
	DialTimeout time.Duration
	// MaxBody bounds a request body Forward accepts (ErrBodyTooLarge beyond).
	MaxBody int64
	// BodyMemory is how much of a request body Forward keeps in memory
	// (at most 1 MiB); a larger body goes to an unlinked temp file in BodyDir.
	BodyMemory int
	// BodyDir holds those temp files ("" = os.TempDir()). Keep it private
	// to the process: a body may hold passwords.
	BodyDir string
	// BodyTimeout bounds each wait for request body bytes in Forward
	// (ErrBodyTimeout); 0 = no bound.
	BodyTimeout time.Duration
	// OnStderr, if set, is called by Forward with what the script wrote to
	// FCGI_STDERR (bounded to 64 KiB) when the response has ended and the
	// stream was not empty. php-fpm sends PHP errors there when the error_log
	// ini setting is unset. It must not retain p.
	OnStderr func(r *http.Request, p []byte)
	// OnTiming, if set, is called by Forward once a response has been
	// relayed whole: wait is how long the request waited for a free
	// connection (a PHP worker), run the time from then until the last
	// byte of the response (PHP's time, plus relaying to a client that
	// reads slowly). It is on the request path: keep it cheap.
	OnTiming func(wait, run time.Duration)
}

// DefaultConfig returns the defaults. Address is empty and must be set.
func DefaultConfig() Config {
	return Config{
		Network:     "unix",
		MaxConns:    8,
		MaxIdle:     8,
		IdleTimeout: 30 * time.Second,
		DialTimeout: time.Second,
		MaxBody:     64 << 20,
		BodyMemory:  64 << 10,
		BodyTimeout: 30 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Network != "unix" && c.Network != "tcp":
		return fmt.Errorf("fastcgi: config.network: must be \"unix\" or \"tcp\", got %q", c.Network)
	case c.Address == "":
		return fmt.Errorf("fastcgi: config.address: must not be empty")
	case c.MaxConns < 1:
		return fmt.Errorf("fastcgi: config.max_conns: must be at least 1, got %d", c.MaxConns)
	case c.MaxIdle < 0 || c.MaxIdle > c.MaxConns:
		return fmt.Errorf("fastcgi: config.max_idle: must be between 0 and max_conns (%d), got %d", c.MaxConns, c.MaxIdle)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("fastcgi: config.idle_timeout: must be positive, got %s", c.IdleTimeout)
	case c.DialTimeout <= 0:
		return fmt.Errorf("fastcgi: config.dial_timeout: must be positive, got %s", c.DialTimeout)
	case c.MaxBody < 1:
		return fmt.Errorf("fastcgi: config.max_body: must be at least 1, got %d", c.MaxBody)
	case c.BodyMemory < 0 || c.BodyMemory > maxMemBody:
		return fmt.Errorf("fastcgi: config.body_memory: must be 0 to %d, got %d", maxMemBody, c.BodyMemory)
	case c.BodyTimeout < 0:
		return fmt.Errorf("fastcgi: config.body_timeout: must not be negative, got %s", c.BodyTimeout)
	}
	return nil
}
