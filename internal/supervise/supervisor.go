package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Supervisor starts and supervises child processes. Create it with New and
// release it with Close.
type Supervisor struct {
	logger  *slog.Logger
	spawner *spawner
	loops   sync.WaitGroup // one per supervised Process (and per Start in flight)

	closeOnce sync.Once

	mu     sync.Mutex
	procs  map[string]*Process // processes not yet Stopped/Failed, by name
	closed bool

	hookMu sync.Mutex
	hooks  []func(Event)
}

// New returns a Supervisor that logs to logger (nil discards) and starts its
// spawner goroutine (see deathsig.go).
func New(logger *slog.Logger) *Supervisor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{
		logger:  logger,
		spawner: startSpawner(),
		procs:   make(map[string]*Process),
	}
}

// OnEvent registers fn to be called for every Event, in addition to hooks
// registered before. Hooks are called synchronously from supervision
// goroutines and must not block or call back into Stop.
func (s *Supervisor) OnEvent(fn func(Event)) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.hooks = append(s.hooks, fn)
}

func (s *Supervisor) emit(name string, kind EventKind, pid int, err error) {
	s.hookMu.Lock()
	hooks := s.hooks
	s.hookMu.Unlock()
	ev := Event{Name: name, Kind: kind, Pid: pid, Err: err, Time: time.Now()}
	for _, fn := range hooks {
		fn(ev)
	}
}

// Start validates spec, launches the program and supervises it until Stop or
// until it gives up restarting. The first launch is synchronous: an exec
// error (e.g. ENOENT) is returned here and nothing is supervised. Only one
// Process per Name may be active at a time; the name is free again once the
// previous one is Done.
func (s *Supervisor) Start(spec Spec) (*Process, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec = spec.withDefaults()
	p := newProcess(s, spec)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("supervise: start %s: %w", spec.Name, ErrClosed)
	}
	if _, dup := s.procs[spec.Name]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("supervise: start %s: a process with this name is already supervised", spec.Name)
	}
	// Registered before launching so StopAll/Close see it; the loop count is
	// raised under mu so Close cannot stop the spawner under our feet.
	s.procs[spec.Name] = p
	s.loops.Add(1)
	s.mu.Unlock()

	r, err := p.launch()
	if err != nil {
		p.abort(err)
		s.loops.Done()
		return nil, err
	}
	go func() {
		defer s.loops.Done()
		p.supervise(r)
	}()
	return p, nil
}

// forget drops p from the active set once it is final.
func (s *Supervisor) forget(p *Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.procs[p.spec.Name] == p {
		delete(s.procs, p.spec.Name)
	}
}

func (s *Supervisor) lookup(names []string) []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []*Process
	for _, n := range names {
		if p, ok := s.procs[n]; ok {
			ps = append(ps, p)
		}
	}
	return ps
}

func (s *Supervisor) active() []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]*Process, 0, len(s.procs))
	for _, p := range s.procs {
		ps = append(ps, p)
	}
	return ps
}

// StopAll stops processes group by group: the names in each inner slice are
// stopped concurrently, and a group starts only when the previous one is
// done. Unknown names are skipped. Afterwards every remaining process is
// stopped concurrently. Stop errors (ctx ending, which escalates to SIGKILL)
// are logged.
func (s *Supervisor) StopAll(ctx context.Context, order [][]string) {
	for _, group := range order {
		s.stopConcurrently(ctx, s.lookup(group))
	}
	s.stopConcurrently(ctx, s.active())
}

func (s *Supervisor) stopConcurrently(ctx context.Context, ps []*Process) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			if err := p.Stop(ctx); err != nil {
				s.logger.Warn("supervise: stop", "process", p.Name(), "err", err)
			}
		})
	}
	wg.Wait()
}

// Close stops every remaining process (like StopAll with no order, each
// bounded by its StopTimeout), waits for all supervision goroutines and then
// stops the spawner. The spawner goes last because its thread exiting would
// deliver Pdeathsig to any child still alive. Start fails with ErrClosed
// afterwards. Close is idempotent.
func (s *Supervisor) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.StopAll(context.Background(), nil)
		s.loops.Wait()
		s.spawner.close()
	})
}
