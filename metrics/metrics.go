// Package metrics serves kediff's live metrics in the Prometheus text format
// and pushes a batch job's final values to a Pushgateway.
//
// A command adds the flags with AddFlags, calls Flags.Start once they are
// parsed, registers its metrics (NewPreprocess, NewTrain) with the Job's
// Registerer, and calls Job.End when the work is done:
//
//	mf := metrics.AddFlags(fs)
//	...
//	job, err := mf.Start("kediff_preprocess", nil, log) // nil Job without the flags
//	if job != nil {
//		opt.Observer = metrics.NewPreprocess(job.Registerer, log)
//	}
//	_, err = pipelines.Preprocess(ctx, opt)
//	job.End(err) // pushes (--metrics-push), stops serving
//
// The metrics live in a registry of kediff's own, not the client's global
// default; /metrics also shows the Go runtime and process collectors, which
// are not pushed (a finished process's heap means nothing on a Pushgateway).
package metrics

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
)

// Registry holds one process's metrics: kediff's own, which are served and
// pushed, and the Go runtime and process collectors, which are only served.
type Registry struct {
	own     *prometheus.Registry
	runtime *prometheus.Registry
}

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *Registry {
	r := &Registry{own: prometheus.NewRegistry(), runtime: prometheus.NewRegistry()}
	r.runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Registerer is where kediff's metrics go.
func (r *Registry) Registerer() prometheus.Registerer { return r.own }

// Gatherer gathers everything /metrics shows.
func (r *Registry) Gatherer() prometheus.Gatherer { return prometheus.Gatherers{r.own, r.runtime} }

// Handler serves the exposition format (text, or what the scraper asks for).
func (r *Registry) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(r.runtime,
		promhttp.HandlerFor(r.Gatherer(), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
}

// Server serves a Registry at /metrics until Close.
type Server struct {
	// URL is where the metrics are, with the port bound (addr ":0" picks a
	// free one).
	URL  string
	srv  *http.Server
	done chan error
}

// Serve listens on addr (host:port) and serves r at /metrics in the
// background.
func (r *Registry) Serve(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w (is the port taken? pick another --metrics-addr, or port 0 for a free one)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", r.Handler())
	s := &Server{
		URL:  "http://" + ln.Addr().String() + "/metrics",
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Close stops serving, giving scrapes in flight a moment to finish, and
// returns once the server has ended.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Push sends kediff's metrics to the Pushgateway at gatewayURL, replacing
// those of the group job + grouping (an HTTP PUT). Labels named in grouping
// are taken off the metrics: the Pushgateway puts them back from the group.
func (r *Registry) Push(ctx context.Context, gatewayURL, job string, grouping map[string]string) error {
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := r.own.Gather()
		for _, mf := range mfs {
			for _, m := range mf.Metric {
				keep := m.Label[:0]
				for _, l := range m.Label {
					if _, ok := grouping[l.GetName()]; !ok {
						keep = append(keep, l)
					}
				}
				m.Label = keep
			}
		}
		return mfs, err
	})
	p := push.New(gatewayURL, job).Gatherer(g).Client(&http.Client{Timeout: 30 * time.Second})
	for k, v := range grouping {
		p = p.Grouping(k, v)
	}
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("metrics: push to %s (job %s): %w", gatewayURL, job, err)
	}
	return nil
}

// Flags are the metrics flags of a command.
type Flags struct {
	Addr string // --metrics-addr: serve /metrics here while running
	Push string // --metrics-push: Pushgateway URL for the final values
}

// AddFlags adds --metrics-addr and --metrics-push to fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.Addr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics while running, e.g. :9090 (port 0 picks a free one; the URL is logged)")
	fs.StringVar(&f.Push, "metrics-push", "", "at the end, push the final metrics to this Pushgateway, e.g. http://pushgateway:9091 (for batch jobs)")
	return f
}

// Job is one command's metrics: served while it runs and pushed at its end.
// A nil *Job (neither flag given) does nothing.
type Job struct {
	// Registerer takes the command's metrics; it adds the Job's labels.
	Registerer prometheus.Registerer
	// Server is the /metrics server; nil without --metrics-addr.
	Server *Server

	reg         *Registry
	name, push  string
	grouping    map[string]string
	log         *slog.Logger
	start       time.Time
	took        atomic.Int64 // nanoseconds the run took, once it has ended
	lastSuccess prometheus.Gauge
	once        sync.Once
}

// Start checks the flags and starts serving. name is the Pushgateway job
// and the prefix of the Job's own gauges (NAME_duration_seconds,
// NAME_last_success_timestamp_seconds); labels are put on every metric
// registered through the Job's Registerer and, with instance (the host
// name), make up the push's grouping key, so that the workers of one job
// keep separate groups. It returns a nil Job when neither flag is set.
func (f *Flags) Start(name string, labels map[string]string, log *slog.Logger) (*Job, error) {
	if f.Addr == "" && f.Push == "" {
		return nil, nil
	}
	if log == nil {
		log = slog.Default()
	}
	if f.Push != "" {
		u, err := url.Parse(f.Push)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--metrics-push %q: want the Pushgateway's http:// or https:// URL, e.g. http://pushgateway:9091", f.Push)
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	grouping := map[string]string{"instance": host}
	for k, v := range labels {
		grouping[k] = v
	}
	reg := NewRegistry()
	j := &Job{
		Registerer: prometheus.WrapRegistererWith(labels, reg.Registerer()),
		reg:        reg, name: name, push: f.Push, grouping: grouping, log: log, start: time.Now(),
	}
	duration := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name + "_duration_seconds",
		Help: "Seconds since the run started; once it has ended, how long it took."}, func() float64 {
		if d := j.took.Load(); d > 0 {
			return time.Duration(d).Seconds()
		}
		return time.Since(j.start).Seconds()
	})
	j.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: name + "_last_success_timestamp_seconds",
		Help: "Unix time at which the run ended without error (absent until then)."})
	j.Registerer.MustRegister(duration)
	if f.Addr != "" {
		if j.Server, err = reg.Serve(f.Addr); err != nil {
			return nil, err
		}
		log.Info("metrics: serving", "url", j.Server.URL)
	}
	return j, nil
}

// End records how the run ended (err), pushes the metrics with
// --metrics-push and stops the server. A failed push is logged, not
// returned: the run's work is done either way. Calls after the first do
// nothing.
func (j *Job) End(err error) {
	if j != nil {
		j.once.Do(func() { j.end(err) })
	}
}

func (j *Job) end(err error) {
	j.took.Store(int64(max(time.Since(j.start), 1)))
	if err == nil {
		j.Registerer.MustRegister(j.lastSuccess)
		j.lastSuccess.SetToCurrentTime()
	}
	if j.push != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if perr := j.reg.Push(ctx, j.push, j.name, j.grouping); perr != nil {
			j.log.Error("metrics: push failed", "err", perr)
		} else {
			j.log.Info("metrics: pushed", "url", j.push, "job", j.name, "grouping", j.grouping)
		}
		cancel()
	}
	if j.Server != nil {
		j.Server.Close()
	}
}
