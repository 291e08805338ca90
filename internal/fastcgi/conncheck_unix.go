//go:build unix

package fastcgi

import "syscall"

func (c *conn) initProbe() {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.raw = raw
	c.probeFn = func(fd uintptr) bool {
		_, err := syscall.Read(int(fd), c.probeBuf[:])
		// An idle connection has nothing to read, so EAGAIN means alive. EOF
		// means php-fpm closed it (pm.max_requests, restart); stray bytes mean
		// the stream is out of sync. Either makes it unusable.
		c.probeLive = err == syscall.EAGAIN || err == syscall.EINTR
		return true
	}
}

// alive reports, without blocking, whether an idle connection is usable.
func (c *conn) alive() bool {
	if c.raw == nil {
		return true
	}
	c.probeLive = false
	if err := c.raw.Read(c.probeFn); err != nil {
		return false
	}
	return c.probeLive
}
