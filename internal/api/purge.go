package api

// PurgeRequest is the body of POST APIPathPurge and EdgePathPurge; the
// receivers validate it with pagecache.ParsePurgeRequest (soft defaults to
// true when absent).
type PurgeRequest struct {
	URLs []string `json:"urls"`
	Tags []string `json:"tags"`
	All  bool     `json:"all"`
	Soft bool     `json:"soft"`
}

// PurgeResult is the controller's answer to POST APIPathPurge.
type PurgeResult struct {
	Applied []string `json:"applied"`           // edges that applied it
	Pending []string `json:"pending,omitempty"` // edges it is being retried on
	Purged  int      `json:"purged"`            // entries affected, summed over edges
}

// EdgePurgeResult is an edge's answer to POST EdgePathPurge.
type EdgePurgeResult struct {
	Purged int `json:"purged"` // entries affected
}
