package controller

import (
	"sync"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// startup records the steps of bringing the environment up as they finish:
// the status document lists them (a detached `up` prints them from there)
// and OnStep hears of each at once (a foreground `up` prints them).
type startup struct {
	mu    sync.Mutex
	steps []api.StartupStep
	hear  func(api.StartupStep)
}

func (s *startup) done(name string, took time.Duration) {
	st := api.StartupStep{Name: name, TookMS: took.Milliseconds()}
	s.mu.Lock()
	s.steps = append(s.steps, st)
	hear := s.hear
	s.mu.Unlock()
	if hear != nil {
		hear(st)
	}
}

func (s *startup) list() []api.StartupStep {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.StartupStep{}, s.steps...)
}

// OnStep calls f with each step of bringing the environment up as it
// finishes; set it before Run.
func (c *Controller) OnStep(f func(api.StartupStep)) {
	c.startup.mu.Lock()
	c.startup.hear = f
	c.startup.mu.Unlock()
}
