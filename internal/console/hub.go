package console

import (
	"errors"
	"sync"
)

// ErrFull is Subscribe's answer when MaxClients are connected.
var ErrFull = errors.New("console: too many dashboards connected")

// message is one server-sent event: its name and its data (JSON, one line).
type message struct {
	name string
	data []byte
}

// Hub hands every published message to each subscriber without ever
// waiting for one: a subscriber whose buffer is full is dropped (its Gone
// channel closes) and the next ones still get the message. The number of
// subscribers is bounded.
type Hub struct {
	max, buffer int

	mu      sync.Mutex
	clients map[*Sub]struct{}
	closed  bool
	dropped uint64 // subscribers dropped for being slow
}

// Sub is one subscriber: read C until Gone closes.
type Sub struct {
	C    chan message
	gone chan struct{}
	once sync.Once
}

// Gone closes when the hub dropped the subscriber (too slow) or closed.
func (s *Sub) Gone() <-chan struct{} { return s.gone }

func (s *Sub) drop() { s.once.Do(func() { close(s.gone) }) }

// NewHub returns a hub for at most max subscribers with buffer messages each.
func NewHub(max, buffer int) *Hub {
	return &Hub{max: max, buffer: buffer, clients: map[*Sub]struct{}{}}
}

// Subscribe adds a subscriber, or returns ErrFull.
func (h *Hub) Subscribe() (*Sub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.clients) >= h.max {
		return nil, ErrFull
	}
	s := &Sub{C: make(chan message, h.buffer), gone: make(chan struct{})}
	h.clients[s] = struct{}{}
	return s, nil
}

// Unsubscribe removes s (it is safe to call more than once).
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	delete(h.clients, s)
	h.mu.Unlock()
	s.drop()
}

// Publish offers m to every subscriber and drops those whose buffer is full.
func (h *Hub) Publish(name string, data []byte) {
	m := message{name: name, data: data}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.clients {
		select {
		case s.C <- m:
		default:
			delete(h.clients, s)
			h.dropped++
			s.drop()
		}
	}
}

// Len is the number of subscribers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped counts the subscribers dropped for being slow.
func (h *Hub) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// Close drops every subscriber and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.clients {
		delete(h.clients, s)
		s.drop()
	}
}
