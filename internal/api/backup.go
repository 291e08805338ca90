package api

import "encoding/json"

// LevelAlert marks an event an operator must act on.
const LevelAlert = "alert"

// BackupRequest is the body of POST APIPathBackups: take a backup now.
type BackupRequest struct {
	// To is the target, an absolute directory or s3://BUCKET/PREFIX (reached
	// with the config's backup.s3); "" is the configured one (backup.to,
	// else DIR/backups).
	To string `json:"to,omitempty"`
}

// BackupResult is the backup taken.
type BackupResult struct {
	ID     string `json:"id"`
	Target string `json:"target"`
	// Manifest is the backup's manifest.json.
	Manifest json.RawMessage `json:"manifest"`
}
