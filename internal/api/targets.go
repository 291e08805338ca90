package api

// TargetGroup is one entry of Prometheus HTTP service discovery
// (APIPathTargets): addresses to scrape and labels for them. The label
// "__metrics_path__" sets the path Prometheus scrapes.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}
