package supervise

import (
	"errors"
	"strconv"
	"time"
)

// ErrNotRunning is returned when signalling a process that has no live child.
var ErrNotRunning = errors.New("not running")

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("supervisor closed")

// State is the lifecycle state of a Process.
type State int32

const (
	Starting State = iota // launching a child
	Running               // a child is running
	Backoff               // waiting before a restart
	Stopping              // Stop sent StopSignal; waiting for the exit
	Stopped               // final: stopped by Stop, or a Never run exited cleanly
	Failed                // final: gave up restarting; see Process.Err
)

var stateNames = [...]string{
	Starting: "starting",
	Running:  "running",
	Backoff:  "backoff",
	Stopping: "stopping",
	Stopped:  "stopped",
	Failed:   "failed",
}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// EventKind names what happened to a process.
type EventKind string

const (
	EventStarted    EventKind = "started"    // a child was launched; Pid is set
	EventExited     EventKind = "exited"     // a child exited on its own (or failed to launch on restart, Pid 0); Err is why
	EventRestarting EventKind = "restarting" // waiting out the backoff before a restart
	EventFailed     EventKind = "failed"     // final: gave up; Err is the same as Process.Err
	EventStopped    EventKind = "stopped"    // final: stopped by Stop, or a Never run exited cleanly
)

// Event is delivered to hooks registered with Supervisor.OnEvent.
type Event struct {
	Name string
	Kind EventKind
	Pid  int
	Err  error
	Time time.Time
}
