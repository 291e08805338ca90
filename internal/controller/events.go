package controller

import (
	"fmt"

	"github.com/scalepress/scalepress/internal/api"
)

// event records an event in the event log (internal/eventlog) and logs it.
func (c *Controller) event(kind, node, format string, args ...any) {
	c.eventWith(kind, node, nil, format, args...)
}

func (c *Controller) eventWith(kind, node string, inputs map[string]any, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.events != nil {
		c.events.Add(api.Event{Kind: kind, Node: node, Message: msg, Inputs: inputs})
	}
	c.logger.Info(msg, "kind", kind, "node", node)
}
