package filesync

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scalepress/scalepress/internal/metrics"
)

// storeCollector reads the store's Status at scrape time (docs/metrics.md,
// "files").
type storeCollector struct {
	store                                                       *Store
	seq, snapshot, files, bytes, blobs, quota, segments, fenced *prometheus.Desc
}

func newStoreCollector(st *Store) *storeCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &storeCollector{store: st,
		seq:      d("scalepress_files_log_seq", "Last sequence number of the change log."),
		snapshot: d("scalepress_files_snapshot_seq", "Sequence number of the newest snapshot of the tree."),
		files:    d("scalepress_files_tree_files", "Files in the current tree."),
		bytes:    d("scalepress_files_tree_bytes", "Size of the files of the current tree."),
		blobs:    d("scalepress_files_blob_bytes", "What the stored blobs take, older contents not yet collected included."),
		quota:    d("scalepress_files_quota_bytes", "files.quota_mb in bytes; 0 = no quota."),
		segments: d("scalepress_files_log_segments", "Segments of the change log."),
		fenced:   d("scalepress_files_fenced", "1 while the store refuses writes: another files role appended to the change log in the same bucket."),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.seq, c.snapshot, c.files, c.bytes, c.blobs, c.quota, c.segments, c.fenced} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.store.Status()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(c.seq, float64(st.Seq))
	g(c.snapshot, float64(st.SnapshotSeq))
	g(c.files, float64(st.Files))
	g(c.bytes, float64(st.Bytes))
	g(c.blobs, float64(st.BlobBytes))
	g(c.quota, float64(st.QuotaBytes))
	g(c.segments, float64(st.Segments))
	g(c.fenced, metrics.B2F(st.Fenced != ""))
}
