package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/scalepress/scalepress/internal/api"
)

// runEvents prints the event log; -f follows it with a long poll.
func runEvents(args []string) error {
	fs := newFlags("events")
	var d dirFlags
	d.register(fs, true)
	follow := fs.Bool("f", false, "follow: keep printing new events")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := apiClient(d)
	if err != nil {
		return err
	}
	c.HTTP.Timeout = 40 * time.Second
	ctx, cancel := signalContext()
	defer cancel()
	var since uint64
	for {
		wait := "0s"
		if *follow && since > 0 {
			wait = "30s" // long poll: returns as soon as there is a new event
		}
		var page api.Events
		if err := c.Get(ctx, fmt.Sprintf("%s?%s=%d&%s=%s", api.APIPathEvents, api.ParamSince, since, api.ParamWait, wait), &page); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range page.Events {
			if *asJSON {
				b, _ := json.Marshal(e)
				fmt.Println(string(b))
			} else {
				fmt.Printf("%s  %-7s %s\n", e.Time.Local().Format("15:04:05.000"), e.Kind, e.Message)
			}
		}
		if !*follow {
			return nil
		}
		if page.Next == 0 { // an empty log: wait for the first event
			time.Sleep(time.Second)
		}
		since = max(page.Next, since)
	}
}
