package api

// Releases (docs/adr/0023-releases.md): GET APIPathReleases answers
// Releases (a read); POST APIPathReleases takes an UpdateRequest and POST
// APIPathRollback a RollbackRequest (operator token, JSON), each answering
// the Release it rolled out.
const (
	APIPathReleases = "/v1/releases"
	APIPathRollback = "/v1/releases/rollback"
)

// Release statuses.
const (
	ReleaseStaged     = "staged"      // stored, not rolled out yet
	ReleaseCanary     = "canary"      // on the canary node, being checked
	ReleaseLive       = "live"        // what every node serves now
	ReleaseFailed     = "failed"      // refused during its rollout; Reason says why
	ReleaseRolledBack = "rolled-back" // was live, replaced by a rollback
	ReleaseSuperseded = "superseded"  // was live, replaced by a newer release
)

// Release is one release of the site's code: what it holds and how its
// rollout went.
type Release struct {
	ID     string `json:"id"`   // r1, r2, ...
	Time   string `json:"time"` // RFC 3339, when it was staged
	Kind   string `json:"kind"` // initial, core, plugin, theme, rollback
	Name   string `json:"name,omitempty"`
	From   string `json:"from,omitempty"`   // the source it was staged from, or the release a rollback returns to
	Change string `json:"change,omitempty"` // what changed, one line ("core 6.1.9 → 6.1.10")
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"` // why it failed
	// Core, Plugins and Themes are what the release holds.
	Core    string             `json:"core"`
	Plugins []ReleaseComponent `json:"plugins"`
	Themes  []ReleaseComponent `json:"themes"`
	// DB is the database upgrade the release ran ("53496 → 53500"), when
	// its core changed $wp_db_version.
	DB string `json:"db,omitempty"`
	// Seq is the files sequence number once the release was live.
	Seq uint64 `json:"seq,omitempty"`
	// DurationMS is how long the rollout took.
	DurationMS int64 `json:"duration_ms,omitempty"`
}

// ReleaseComponent is a plugin or a theme with its version.
type ReleaseComponent struct {
	Name    string `json:"name"`
	Title   string `json:"title,omitempty"`
	Version string `json:"version,omitempty"`
}

// Releases answers GET APIPathReleases.
type Releases struct {
	// Current is what the files store holds now, read from it.
	Current Release `json:"current"`
	// Seq is the files store's sequence number Current was read at.
	Seq uint64 `json:"seq"`
	// Rollout is the id of the release being rolled out, "" when none.
	Rollout string `json:"rollout,omitempty"`
	// Releases are every recorded release, oldest first.
	Releases []Release `json:"releases"`
}

// UpdateRequest is the body of POST APIPathReleases: stage the source From
// (an absolute path on the controller's host: a directory, .zip, .tar.gz)
// as a new Kind ("core", "plugin", "theme") release of Name and roll it
// out. Force allows a version older than (or equal to) the current one.
type UpdateRequest struct {
	Kind  string `json:"kind"`
	Name  string `json:"name,omitempty"`
	From  string `json:"from"`
	Force bool   `json:"force,omitempty"`
}

// RollbackRequest is the body of POST APIPathRollback: roll out the files
// of Release again ("" for the one live before the current).
type RollbackRequest struct {
	Release string `json:"release,omitempty"`
}
