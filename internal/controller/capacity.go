package controller

import (
	"math"
	"os"
	"runtime"
	"sync"

	"github.com/scalepress/scalepress/internal/autoscale"
	"github.com/scalepress/scalepress/internal/config"
)

// cpuPressureFile is the host's CPU pressure (PSI).
const cpuPressureFile = "/proc/pressure/cpu"

// hostCapacity measures the host the node group's new nodes start on, for
// the scaler's CPU budget and saturation check (docs/adr/0024-capacity.md):
// this machine with the local scheduler. With Nomad the nodes run on other
// hosts, which the controller cannot measure: nil (no budget, no check)
// until the launcher reports its hosts.
func (c *Controller) hostCapacity() func() autoscale.Host {
	if c.cfg.Scheduler.Kind == config.SchedulerNomad {
		return nil
	}
	var once sync.Once
	return func() autoscale.Host {
		h := autoscale.Host{Cores: runtime.NumCPU(), CPUPressure: math.NaN()}
		b, err := os.ReadFile(cpuPressureFile)
		if err == nil {
			h.CPUPressure, err = autoscale.ParsePressure(b)
		}
		if err != nil {
			once.Do(func() {
				c.logger.Warn("no CPU pressure: the autoscaler cannot tell a saturated CPU (autoscaling.cpu_saturated); the CPU budget still holds", "file", cpuPressureFile, "err", err)
			})
		}
		return h
	}
}
