//go:build !unix

package fastcgi

func (c *conn) initProbe() {}

func (c *conn) alive() bool { return true }
