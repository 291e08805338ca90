package upstream

import (
	"syscall"
	"unsafe"
)

// alive peeks at an idle connection without blocking: a node that closed
// it (idle timeout, restart, kill) has sent FIN or RST, which is seen here
// instead of by the request written to it. Any byte waiting is a protocol
// error too: nothing was asked.
func (c *conn) alive() bool {
	if c.raw == nil {
		return true
	}
	if c.peek == nil {
		c.peek = func(fd uintptr) bool {
			var b [1]byte
			n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			c.peekOK = int(n) < 0 && (errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK)
			if errno == 0 {
				c.peekOK = false // FIN (n == 0) or a stray byte
			}
			return true
		}
	}
	c.peekOK = false // stays false when raw.Read fails (a read deadline passed)
	c.raw.Read(c.peek)
	return c.peekOK
}
