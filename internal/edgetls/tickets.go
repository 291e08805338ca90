package edgetls

import (
	"crypto/tls"
	"encoding/binary"
	"time"

	"github.com/scalepress/scalepress/internal/token"
)

// ticketKeys are the session ticket keys of the period that holds now:
// that period's key first (it encrypts), then the previous one (tickets
// issued before the rotation still resume) and the next one (an edge whose
// clock is ahead already encrypts with it). Every edge derives the same
// keys from the same purpose key, so a ticket issued by one resumes at any.
func ticketKeys(k token.Key, period time.Duration, now time.Time) [][32]byte {
	p := now.UnixNano() / int64(period)
	keys := make([][32]byte, 0, 3)
	for _, n := range []int64{p, p - 1, p + 1} {
		var msg [16]byte
		copy(msg[:8], "ticket\x00\x00")
		binary.BigEndian.PutUint64(msg[8:], uint64(n))
		keys = append(keys, [32]byte(k.MAC(msg[:])))
	}
	return keys
}

// nextRotation is when the period after now's starts.
func nextRotation(period time.Duration, now time.Time) time.Time {
	p := now.UnixNano()/int64(period) + 1
	return time.Unix(0, p*int64(period))
}

// setTicketKeys installs the keys of now's period in cfg.
func setTicketKeys(cfg *tls.Config, k token.Key, period time.Duration, now time.Time) {
	cfg.SetSessionTicketKeys(ticketKeys(k, period, now))
}
