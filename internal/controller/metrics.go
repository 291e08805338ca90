package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scalepress/scalepress/internal/api"
	"github.com/scalepress/scalepress/internal/metrics"
	"github.com/scalepress/scalepress/internal/nodegroup"
)

// eventKinds are the event kinds counted by scalepress_events_total.
var eventKinds = []string{"scale", "heal", "node", "config", "backup", "rebalance"}

// nodeStates are the states scalepress_nodes always has a series for.
var nodeStates = []string{api.NodePending, api.NodeWarming, api.NodeInService, api.NodeDraining, api.NodeTerminated, api.NodeFailed}

// controllerMetrics reads the status document, the event log and the
// group's decisions at scrape time (docs/metrics.md, "controller").
type controllerMetrics struct {
	nodes, nodeUtil, desired, util, minNodes, maxNodes, target, decisions, events *prometheus.Desc
	moves                                                                         *prometheus.Desc
	edgeUp, storeSeq, syncLag, dbUp, dbPrimary, dbCommitted, clusterPrimary       *prometheus.Desc
	dnsHealthy                                                                    *prometheus.Desc
	backups, backupLastOK, backupDuration, backupSize, binlogUntil                *prometheus.Desc

	// read returns what one scrape reports.
	read func() scrape
}

// scrape is what the controller reports at one scrape.
type scrape struct {
	status    api.Status
	events    map[string]uint64
	decisions map[nodegroup.DecisionKey]uint64
	moves     uint64 // nodes rebalances moved to another host
	backup    backupFigures
}

func newControllerMetrics(read func() scrape) *controllerMetrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &controllerMetrics{read: read,
		nodes:          d("scalepress_nodes", "Nodes by state.", "state"),
		nodeUtil:       d("scalepress_node_utilization", "PHP utilisation per node.", "node", "state"),
		desired:        d("scalepress_autoscaling_desired", "Desired node count."),
		util:           d("scalepress_autoscaling_utilization", "Mean utilisation of nodes in service."),
		minNodes:       d("scalepress_autoscaling_min_nodes", "Smallest group the autoscaler keeps (autoscaling.min)."),
		maxNodes:       d("scalepress_autoscaling_max_nodes", "Largest group the autoscaler makes (autoscaling.max)."),
		target:         d("scalepress_autoscaling_target_utilization", "Utilisation the autoscaler tracks (autoscaling.target)."),
		decisions:      d("scalepress_autoscaling_decisions_total", "Scaling decisions that moved the desired size, by direction (out, in, none) and reason (the autoscaler's action: scale-out, scale-in, min, max, none).", "direction", "reason"),
		events:         d("scalepress_events_total", "Events by kind (scale = scaling decisions, heal = replacements).", "kind"),
		moves:          d("scalepress_rebalance_moves_total", "Nodes a rebalance moved to another host (autoscaling.rebalance_after)."),
		edgeUp:         d("scalepress_edge_up", "1 while the edge passes the controller's health check.", "edge", "region"),
		storeSeq:       d("scalepress_files_store_seq", "Last sequence number of the files change log (the store)."),
		syncLag:        d("scalepress_files_sync_lag", "Changes of the files log a node in service has not applied yet: store seq minus the node's applied seq.", "node"),
		dbUp:           d("scalepress_db_member_up", "1 while the MariaDB member is synced (serves reads and writes).", "member"),
		dbPrimary:      d("scalepress_db_member_primary", "1 while the Galera member is in the primary component (Galera clusters only).", "member"),
		dbCommitted:    d("scalepress_db_member_last_committed", "Last committed Galera sequence number of the member (Galera clusters only).", "member"),
		clusterPrimary: d("scalepress_db_cluster_primary", "1 while the database has a primary component: a synced standalone member, or a Galera primary component."),
		dnsHealthy:     d("scalepress_dns_region_healthy", "1 while one of the region's edges passes the controller's health check (dns enabled).", "region"),
		backups:        d("scalepress_backups_total", "Backups taken since the controller started, by result (ok, failed).", "result"),
		backupLastOK:   d("scalepress_backup_last_success_timestamp_seconds", "When the last good backup finished, Unix time (0: none since start)."),
		backupDuration: d("scalepress_backup_last_duration_seconds", "How long the last good backup took."),
		backupSize:     d("scalepress_backup_last_size_bytes", "Bytes the last good backup added to its target."),
		binlogUntil:    d("scalepress_binlog_archived_until_timestamp_seconds", "The moment the binary log archive reaches, Unix time (0: not archived since start)."),
	}
}

func (m *controllerMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.nodes, m.nodeUtil, m.desired, m.util, m.minNodes, m.maxNodes, m.target, m.decisions, m.events, m.moves,
		m.edgeUp, m.storeSeq, m.syncLag, m.dbUp, m.dbPrimary, m.dbCommitted, m.clusterPrimary, m.dnsHealthy,
		m.backups, m.backupLastOK, m.backupDuration, m.backupSize, m.binlogUntil} {
		ch <- d
	}
}

func (m *controllerMetrics) Collect(ch chan<- prometheus.Metric) {
	s := m.read()
	st := s.status
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	states := map[string]int{}
	for _, n := range st.Nodes {
		states[n.State]++
		gauge(m.nodeUtil, n.Utilization, n.ID, n.State)
	}
	for _, state := range nodeStates {
		gauge(m.nodes, float64(states[state]), state)
	}
	if a := st.Autoscaling; a != nil {
		gauge(m.desired, float64(a.Desired))
		gauge(m.util, a.Utilization)
		gauge(m.minNodes, float64(a.Min))
		gauge(m.maxNodes, float64(a.Max))
		gauge(m.target, a.Target)
	}
	for k, n := range s.decisions {
		counter(m.decisions, float64(n), k.Direction, k.Reason)
	}
	for _, k := range eventKinds {
		counter(m.events, float64(s.events[k]), k)
	}
	counter(m.moves, float64(s.moves))
	for _, e := range st.Edges {
		gauge(m.edgeUp, metrics.B2F(e.Healthy), e.ID, e.Region)
	}
	if f := st.Files; f != nil {
		gauge(m.storeSeq, float64(f.Seq))
		for _, n := range st.Nodes {
			if n.State == api.NodeInService {
				gauge(m.syncLag, float64(f.Seq-min(n.FilesSeq, f.Seq)), n.ID)
			}
		}
	}
	if db := st.DB; db != nil {
		galera := len(db.Members) > 1
		for _, mb := range db.Members {
			gauge(m.dbUp, metrics.B2F(mb.State == api.DBSynced), mb.ID)
			if galera {
				gauge(m.dbPrimary, metrics.B2F(mb.ClusterStatus == "Primary"), mb.ID)
				gauge(m.dbCommitted, float64(mb.LastCommitted), mb.ID)
			}
		}
		gauge(m.clusterPrimary, metrics.B2F(db.ClusterSize > 0))
	}
	if d := st.DNS; d != nil {
		for _, r := range d.Regions {
			gauge(m.dnsHealthy, metrics.B2F(r.Healthy), r.Name)
		}
	}
	b := s.backup
	counter(m.backups, float64(b.ok), "ok")
	counter(m.backups, float64(b.failed), "failed")
	gauge(m.backupLastOK, float64(b.lastOK))
	gauge(m.backupDuration, float64(b.lastDurationMS)/1000)
	gauge(m.backupSize, float64(b.lastSize))
	gauge(m.binlogUntil, float64(b.archivedUntil))
}

// scrape reads what the controller reports now.
func (c *Controller) scrape() scrape {
	s := scrape{status: c.Status(), events: c.events.CountByKind(), backup: c.backups.figures()}
	if c.group != nil {
		s.decisions, s.moves = c.group.Decisions(), c.group.Moves()
	}
	return s
}

// targetID carries a target's id to relabelling; as a __meta_ label it is
// not attached to the series (the metrics have their own edge and node
// labels, which a target label of the same name would rename).
const targetID = "__meta_scalepress_id"

// Targets lists every role that serves metrics, for Prometheus HTTP service
// discovery (deploy/prometheus/prometheus.yml): the controller, each
// started edge, each node that is starting, serving or draining, the files
// role (its scrape needs DIR/secrets/files-metrics-token), and the dbrouter
// and the dns role when their metrics addresses are set. Nodes come and go
// with the group, so a static list would miss them.
func (c *Controller) Targets() []api.TargetGroup {
	st := c.Status()
	out := []api.TargetGroup{{Targets: []string{c.cfg.API.Addr}, Labels: map[string]string{"role": "controller", "__metrics_path__": api.APIPathMetrics}}}
	for _, e := range st.Edges {
		out = append(out, api.TargetGroup{Targets: []string{e.Addr}, Labels: map[string]string{"role": "edge", targetID: e.ID, "__metrics_path__": api.EdgePathMetrics}})
	}
	for _, n := range st.Nodes {
		switch n.State {
		case api.NodeWarming, api.NodeInService, api.NodeDraining:
			out = append(out, api.TargetGroup{Targets: []string{n.Addr}, Labels: map[string]string{"role": "node", targetID: n.ID, "__metrics_path__": api.NodePathMetrics}})
		}
	}
	if c.cfg.Files.Enabled {
		out = append(out, api.TargetGroup{Targets: []string{c.cfg.Files.Addr}, Labels: map[string]string{"role": "files", "__metrics_path__": api.FilesPathMetrics}})
	}
	if a := c.cfg.DNS.MetricsAddr; c.cfg.DNS.Enabled && a != "" {
		out = append(out, api.TargetGroup{Targets: []string{a}, Labels: map[string]string{"role": "dns", "__metrics_path__": "/metrics"}})
	}
	if a := c.cfg.DB.RouterMetrics; a != "" {
		out = append(out, api.TargetGroup{Targets: []string{a}, Labels: map[string]string{"role": "dbrouter", "__metrics_path__": api.RouterPathMetrics}})
	}
	return out
}
