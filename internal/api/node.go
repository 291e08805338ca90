package api

// NodeReport is the node agent's own document (GET NodePathStatus): what the
// controller's health checks, scaling, drains and file-sync waits read. It
// is not NodeStatus, the node's entry in the status document.
type NodeReport struct {
	ID       string `json:"id"`
	InFlight int64  `json:"in_flight"`
	Served   int64  `json:"served"`
	// PHPDone counts the PHP requests whose response was relayed whole
	// since the agent started: the served rate the autoscaler's measured
	// steps compare (docs/adr/0032-measured-steps.md).
	PHPDone     int64   `json:"php_done"`
	Utilization float64 `json:"utilization"` // PHP requests running / max_children
	Active      int     `json:"active_processes"`
	Total       int     `json:"total_processes"`
	Waiting     int     `json:"waiting"` // requests waiting for a FastCGI connection in the agent
	PHPOK       bool    `json:"php_ok"`  // php-fpm answered its ping just now
	PHPError    string  `json:"php_error,omitempty"`
	// FilesReady says the filesync agent bootstrapped the docroot; FilesSeq
	// is the files change it applied last.
	FilesReady bool   `json:"files_ready"`
	FilesSeq   uint64 `json:"files_seq"`
	// FilesQuarantined counts the changes of the files log the filesync
	// agent quarantined (kept failing here, skipped); the last one follows.
	FilesQuarantined    int              `json:"files_quarantined"`
	FilesQuarantineLast *FilesQuarantine `json:"files_quarantine_last,omitempty"`
}

// FilesStoreStatus is the part of the files role's GET FilesPathStatus
// other roles read.
type FilesStoreStatus struct {
	Seq uint64 `json:"seq"` // the change log's last sequence number
	// Fenced says why the store refuses writes: another files role
	// appended to the change log in the same bucket.
	Fenced string `json:"fenced,omitempty"`
}
