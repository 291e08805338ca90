package nomadlaunch

import (
	"strconv"
	"strings"

	nomad "github.com/hashicorp/nomad/api"
)

// slotOf is the index of an allocation named "JOB.GROUP[i]", -1 for
// another name.
func slotOf(name string) int {
	open := strings.LastIndexByte(name, '[')
	if open < 0 || !strings.HasSuffix(name, "]") {
		return -1
	}
	i, err := strconv.Atoi(name[open+1 : len(name)-1])
	if err != nil || i < 0 {
		return -1
	}
	return i
}

// live: Nomad wants the allocation to run and it has not ended.
func live(a *nomad.AllocationListStub) bool {
	return a.DesiredStatus == nomad.AllocDesiredStatusRun &&
		(a.ClientStatus == nomad.AllocClientStatusPending || a.ClientStatus == nomad.AllocClientStatusRunning)
}

// ended: the allocation's task is gone on its client (or the client is).
func ended(a *nomad.AllocationListStub) bool {
	switch a.ClientStatus {
	case nomad.AllocClientStatusComplete, nomad.AllocClientStatusFailed, nomad.AllocClientStatusLost:
		return true
	}
	return false
}

// running: the allocation's task runs.
func running(a *nomad.AllocationListStub) bool {
	return a.DesiredStatus == nomad.AllocDesiredStatusRun && a.ClientStatus == nomad.AllocClientStatusRunning
}

// failedInPlace: the allocation failed and still holds its slot (nothing
// replaced it yet): a forced reschedule refills the slot.
func failedInPlace(a *nomad.AllocationListStub) bool {
	return a.ClientStatus == nomad.AllocClientStatusFailed && a.NextAllocation == "" && a.DesiredStatus == nomad.AllocDesiredStatusRun
}

// newest is, per slot, the allocation created last in it.
func newest(allocs []*nomad.AllocationListStub) map[int]*nomad.AllocationListStub {
	out := map[int]*nomad.AllocationListStub{}
	for _, a := range allocs {
		if a.TaskGroup != Group {
			continue
		}
		i := slotOf(a.Name)
		if i < 0 {
			continue
		}
		if cur, ok := out[i]; !ok || a.CreateIndex > cur.CreateIndex {
			out[i] = a
		}
	}
	return out
}

// why is what a gone allocation's task events say.
func why(a *nomad.AllocationListStub) string {
	msg := a.ClientStatus
	if a.ClientDescription != "" {
		msg += ": " + a.ClientDescription
	}
	if ts := a.TaskStates[Task]; ts != nil {
		for i := len(ts.Events) - 1; i >= 0; i-- {
			e := ts.Events[i]
			if d := e.DisplayMessage; d != "" && e.Type != nomad.TaskKilling {
				msg += " (" + e.Type + ": " + d + ")"
				break
			}
		}
	}
	return msg
}
