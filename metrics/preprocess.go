package metrics

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"gocloud.dev/blob"

	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/stages"
)

// Preprocess is the metrics of a kediff preprocess run; it is the run's
// pipelines.Observer. The per-stage numbers are the engine's own counters,
// read when /metrics is scraped, so they cost the pipeline nothing; the
// rest are counters that the write stage adds to as it writes (one atomic
// add per row) and when a shard is complete.
//
// Per stage, labelled stage:
//
//	kediff_preprocess_samples_total                samples passed on (the write stage: consumed); rate() is throughput
//	kediff_preprocess_stage_items_in_total         items taken from the input queue (samples and shard-end markers)
//	kediff_preprocess_stage_items_out_total        items passed on
//	kediff_preprocess_stage_busy_seconds_total     worker time inside the stage function
//	kediff_preprocess_stage_blocked_seconds_total  worker time waiting for room in the output queue
//	kediff_preprocess_stage_workers                workers
//	kediff_preprocess_queue_length                 items waiting in the stage's input queue
//	kediff_preprocess_queue_capacity               that queue's capacity
//
// For the run:
//
//	kediff_preprocess_rows_written_total           rows written
//	kediff_preprocess_rejects_total{stage,reason}  rejects written, by the stage and reason that rejected them
//	kediff_preprocess_image_bytes_total            stored (encoded) image bytes in the rows written
//	kediff_preprocess_parquet_bytes_total{file}    Parquet bytes of complete shards (file: rows, rejects)
//	kediff_preprocess_input_bytes_total            bytes of the input shards read to their end
//	kediff_preprocess_shards_total{result}         output shards written, or skipped as already complete
//	kediff_preprocess_shards_todo                  shards this run set out to process
type Preprocess struct {
	log  *slog.Logger
	pipe atomic.Pointer[stages.Pipeline]

	rows, imageBytes, inputBytes prometheus.Counter
	rejects, parquet, shards     *prometheus.CounterVec
	storeFaults                  *prometheus.CounterVec
	todo                         prometheus.Gauge

	// rejectsBy holds the rejects' counters by stage and reason: read
	// without a lock, copied under mu to add a pair.
	rejectsBy atomic.Pointer[map[[2]string]prometheus.Counter]
	mu        sync.Mutex

	samples, in, out, busy, blocked, workers, queueLen, queueCap *prometheus.Desc
}

// NewPreprocess registers the metrics of a preprocess run with reg. log
// takes the warnings (an input shard whose size could not be found).
func NewPreprocess(reg prometheus.Registerer, log *slog.Logger) *Preprocess {
	if log == nil {
		log = slog.Default()
	}
	stage := []string{"stage"}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("kediff_preprocess_"+name, help, stage, nil)
	}
	m := &Preprocess{
		log: log,
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "kediff_preprocess_rows_written_total",
			Help: "Rows (kept samples) written to the output shards."}),
		imageBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "kediff_preprocess_image_bytes_total",
			Help: "Bytes of the stored (encoded) images in the rows written."}),
		inputBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "kediff_preprocess_input_bytes_total",
			Help: "Bytes of the input shards read to their end (the tar or Parquet file, or the folder's files)."}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kediff_preprocess_rejects_total",
			Help: "Rejected samples written to the rejects files, by the stage and reason that rejected them."}, []string{"stage", "reason"}),
		parquet: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kediff_preprocess_parquet_bytes_total",
			Help: "Bytes of the Parquet files of complete output shards (file: rows for NNNNN.parquet, rejects for NNNNN_rejects.parquet)."}, []string{"file"}),
		shards: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kediff_preprocess_shards_total",
			Help: "Output shards this run wrote (result=written) or found complete and skipped (result=skipped)."}, []string{"result"}),
		storeFaults: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kediff_preprocess_store_faults_total",
			Help: "Object-store faults survived while reading complete shards' inputs (action: retried requests, resumed reads), from the shards' stats files."}, []string{"action"}),
		todo: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kediff_preprocess_shards_todo",
			Help: "Input shards this run set out to process (this worker's, not yet complete)."}),

		samples:  desc("samples_total", "Samples the stage passed on (the write stage: consumed), rejects included; rate() is the stage's throughput."),
		in:       desc("stage_items_in_total", "Items the stage took from its input queue: samples and one end marker per shard."),
		out:      desc("stage_items_out_total", "Items the stage passed on (the write stage: consumed)."),
		busy:     desc("stage_busy_seconds_total", "Seconds the stage's workers spent inside the stage function, summed over workers."),
		blocked:  desc("stage_blocked_seconds_total", "Seconds the stage's workers waited for room in the output queue (the next stage is slower), summed over workers."),
		workers:  desc("stage_workers", "Workers of the stage."),
		queueLen: desc("queue_length", "Items waiting in the stage's input queue."),
		queueCap: desc("queue_capacity", "Capacity of the stage's input queue."),
	}
	m.shards.WithLabelValues("written")
	m.shards.WithLabelValues("skipped")
	m.parquet.WithLabelValues("rows")
	m.parquet.WithLabelValues("rejects")
	m.storeFaults.WithLabelValues("retried")
	m.storeFaults.WithLabelValues("resumed")
	reg.MustRegister(m, m.rows, m.imageBytes, m.inputBytes, m.rejects, m.parquet, m.shards, m.storeFaults, m.todo)
	return m
}

// Describe and Collect make the per-stage metrics a prometheus.Collector
// that reads the engine's counters at each scrape.
func (m *Preprocess) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.samples, m.in, m.out, m.busy, m.blocked, m.workers, m.queueLen, m.queueCap} {
		ch <- d
	}
}

func (m *Preprocess) Collect(ch chan<- prometheus.Metric) {
	p := m.pipe.Load()
	if p == nil {
		return
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	for _, s := range p.Stats() {
		ch <- prometheus.MustNewConstMetric(m.samples, counter, float64(s.Samples), s.Name)
		ch <- prometheus.MustNewConstMetric(m.out, counter, float64(s.Out), s.Name)
		ch <- prometheus.MustNewConstMetric(m.busy, counter, s.Busy.Seconds(), s.Name)
		ch <- prometheus.MustNewConstMetric(m.blocked, counter, s.Blocked.Seconds(), s.Name)
		ch <- prometheus.MustNewConstMetric(m.workers, gauge, float64(s.Workers), s.Name)
		if s.QueueCap > 0 { // not a source
			ch <- prometheus.MustNewConstMetric(m.in, counter, float64(s.In), s.Name)
			ch <- prometheus.MustNewConstMetric(m.queueLen, gauge, float64(s.QueueLen), s.Name)
			ch <- prometheus.MustNewConstMetric(m.queueCap, gauge, float64(s.QueueCap), s.Name)
		}
	}
}

// Plan records the shards of the run.
func (m *Preprocess) Plan(owned, skipped, todo int) {
	m.shards.WithLabelValues("skipped").Add(float64(skipped))
	m.todo.Set(float64(todo))
}

// Start makes the pipeline's stages visible.
func (m *Preprocess) Start(p *stages.Pipeline) { m.pipe.Store(p) }

// InputDone adds the input shard's size to the bytes read.
func (m *Preprocess) InputDone(ctx context.Context, in shards.Input) {
	n, err := inputSize(ctx, in)
	if err != nil {
		m.log.Warn("metrics: size of input shard unknown; kediff_preprocess_input_bytes_total leaves it out", "input", shards.RedactURL(in.URL), "err", shards.RedactError(err, in.URL))
		return
	}
	m.inputBytes.Add(float64(n))
}

// Written counts a row.
func (m *Preprocess) Written(imageBytes int) {
	m.rows.Inc()
	m.imageBytes.Add(float64(imageBytes))
}

// Rejected counts a reject.
func (m *Preprocess) Rejected(stage, reason string) {
	key := [2]string{stage, reason}
	if by := m.rejectsBy.Load(); by != nil {
		if c, ok := (*by)[key]; ok {
			c.Inc()
			return
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	by := map[[2]string]prometheus.Counter{}
	if old := m.rejectsBy.Load(); old != nil {
		maps.Copy(by, *old)
	}
	c, ok := by[key]
	if !ok {
		c = m.rejects.WithLabelValues(stage, reason)
		by[key] = c
		m.rejectsBy.Store(&by)
	}
	c.Inc()
}

// ShardDone counts a complete shard and its Parquet bytes.
func (m *Preprocess) ShardDone(st shards.Stats) {
	m.shards.WithLabelValues("written").Inc()
	m.storeFaults.WithLabelValues("retried").Add(float64(st.Retries))
	m.storeFaults.WithLabelValues("resumed").Add(float64(st.Resumes))
	for name, n := range st.Files {
		switch name {
		case shards.ParquetName(st.Shard):
			m.parquet.WithLabelValues("rows").Add(float64(n))
		case shards.RejectsName(st.Shard):
			m.parquet.WithLabelValues("rejects").Add(float64(n))
		}
	}
}

// inputSize is the size of an input shard: its file's, or the sum of its
// folder's files (the subfolders are other inputs).
func inputSize(ctx context.Context, in shards.Input) (int64, error) {
	bucketURL, key, err := shards.SplitURL(in.URL)
	if err != nil {
		return 0, err
	}
	b, err := shards.OpenDir(ctx, bucketURL, false)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	if in.Format != shards.FormatFolder {
		a, err := b.Attributes(ctx, key)
		if err != nil {
			return 0, err
		}
		return a.Size, nil
	}
	prefix := ""
	if key != "" {
		prefix = key + "/"
	}
	var n int64
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		if !obj.IsDir {
			n += obj.Size
		}
	}
}
