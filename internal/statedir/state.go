package statedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/atomicfile"
)

// StateFormat is the layout version of the state directory this binary writes.
// A directory written by a newer format is refused rather than misread.
const StateFormat = 1

// ErrNewerState means the state directory was written by a newer scalepress.
var ErrNewerState = errors.New("state directory is from a newer scalepress")

// State is the content of DIR/state.json.
type State struct {
	Format    int    `json:"format"`
	CreatedAt string `json:"created_at"`
	Version   string `json:"version"`
	Installed bool   `json:"installed"`
	// Policy holds what `scalepress scale` changed; it outlives restarts.
	Policy *api.ScaleRequest `json:"policy,omitempty"`
}

// ReadState reads the state file at path; a missing one is a new State.
func ReadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{Format: StateFormat, CreatedAt: time.Now().UTC().Format(time.RFC3339)}, nil
	}
	if err != nil {
		return s, fmt.Errorf("state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("state %s is damaged: %w", path, err)
	}
	if s.Format > StateFormat {
		return s, fmt.Errorf("%w: %s has format %d (written by scalepress %s); this binary understands format %d — use a newer scalepress or another --dir", ErrNewerState, path, s.Format, s.Version, StateFormat)
	}
	return s, nil
}

// WriteState writes s to path in the format this binary understands.
func WriteState(path string, s State) error {
	s.Format = StateFormat
	return atomicfile.WriteJSON(path, s, 0o644)
}
