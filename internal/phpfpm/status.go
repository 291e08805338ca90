package phpfpm

import (
	"encoding/json"
	"fmt"
)

// Status is php-fpm's pool status page (?json).
type Status struct {
	Pool, ProcessManager string
	StartSince           int64 // seconds since the pool started
	AcceptedConn         int64
	ListenQueue          int // requests waiting for a free child
	MaxListenQueue       int
	ListenQueueLen       int // socket backlog size
	IdleProcesses        int
	ActiveProcesses      int
	TotalProcesses       int
	MaxActiveProcesses   int
	MaxChildrenReached   int64
	SlowRequests         int64
}

// statusJSON mirrors the keys; pointers tell missing keys from zeros.
type statusJSON struct {
	Pool               *string `json:"pool"`
	ProcessManager     *string `json:"process manager"`
	StartSince         *int64  `json:"start since"`
	AcceptedConn       *int64  `json:"accepted conn"`
	ListenQueue        *int    `json:"listen queue"`
	MaxListenQueue     *int    `json:"max listen queue"`
	ListenQueueLen     *int    `json:"listen queue len"`
	IdleProcesses      *int    `json:"idle processes"`
	ActiveProcesses    *int    `json:"active processes"`
	TotalProcesses     *int    `json:"total processes"`
	MaxActiveProcesses *int    `json:"max active processes"`
	MaxChildrenReached *int64  `json:"max children reached"`
	SlowRequests       *int64  `json:"slow requests"`
}

// ParseStatus parses the output of php-fpm's status page with ?json (also
// ?json&full; the process list is ignored). Every key Status holds is
// required; a missing one is an error naming it.
func ParseStatus(b []byte) (Status, error) {
	var j statusJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Status{}, fmt.Errorf("phpfpm: parse status: %w", err)
	}
	for _, k := range []struct {
		name    string
		missing bool
	}{
		{"pool", j.Pool == nil},
		{"process manager", j.ProcessManager == nil},
		{"start since", j.StartSince == nil},
		{"accepted conn", j.AcceptedConn == nil},
		{"listen queue", j.ListenQueue == nil},
		{"max listen queue", j.MaxListenQueue == nil},
		{"listen queue len", j.ListenQueueLen == nil},
		{"idle processes", j.IdleProcesses == nil},
		{"active processes", j.ActiveProcesses == nil},
		{"total processes", j.TotalProcesses == nil},
		{"max active processes", j.MaxActiveProcesses == nil},
		{"max children reached", j.MaxChildrenReached == nil},
		{"slow requests", j.SlowRequests == nil},
	} {
		if k.missing {
			return Status{}, fmt.Errorf("phpfpm: parse status: missing key %q", k.name)
		}
	}
	return Status{
		Pool:               *j.Pool,
		ProcessManager:     *j.ProcessManager,
		StartSince:         *j.StartSince,
		AcceptedConn:       *j.AcceptedConn,
		ListenQueue:        *j.ListenQueue,
		MaxListenQueue:     *j.MaxListenQueue,
		ListenQueueLen:     *j.ListenQueueLen,
		IdleProcesses:      *j.IdleProcesses,
		ActiveProcesses:    *j.ActiveProcesses,
		TotalProcesses:     *j.TotalProcesses,
		MaxActiveProcesses: *j.MaxActiveProcesses,
		MaxChildrenReached: *j.MaxChildrenReached,
		SlowRequests:       *j.SlowRequests,
	}, nil
}

// Utilization is the share of children busy: active/total, 0 when total is
// 0, clamped to [0, 1]. php-fpm counts a child that holds an idle keep-alive
// connection as active, and its counts can drift (php/php-src#14212), so a
// FastCGI client's own busy count is the better load signal.
func (s Status) Utilization() float64 {
	if s.TotalProcesses <= 0 || s.ActiveProcesses <= 0 {
		return 0
	}
	return min(float64(s.ActiveProcesses)/float64(s.TotalProcesses), 1)
}
