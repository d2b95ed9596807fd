package metricstest

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kediff/kediff/metrics"
)

// The stand-in Pushgateway keeps what Registry.Push sends as the real one
// does: the pushed values with the job and grouping labels, a PUT replacing
// its group only, label values with a slash (sent base64) intact.
func TestStandInGatewayAgreesWithTheRealOne(t *testing.T) {
	fake := httptest.NewServer(newFakeGateway())
	defer fake.Close()
	gateways := map[string]string{"stand-in": fake.URL}
	if url, real := Pushgateway(t); real {
		gateways["real"] = url
	}
	ctx := context.Background()
	push := func(t *testing.T, url, run string, n float64) {
		reg := metrics.NewRegistry()
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kediff_test_things_total", Help: "Things."}, []string{"kind", "run"})
		reg.Registerer().MustRegister(c)
		c.WithLabelValues("a", run).Add(n)
		c.WithLabelValues("b", run).Add(2 * n)
		if err := reg.Push(ctx, url, "kediff_test", map[string]string{"instance": "host/1", "run": run}); err != nil {
			t.Fatal(err)
		}
	}
	for name, url := range gateways {
		t.Run(name, func(t *testing.T) {
			push(t, url, "x", 1)
			push(t, url, "y", 5)
			push(t, url, "x", 3) // replaces x's group, leaves y's
			f, err := Scrape(url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				run, kind string
				want      float64
			}{{"x", "a", 3}, {"x", "b", 6}, {"y", "a", 5}, {"y", "b", 10}} {
				got, ok := f.Value("kediff_test_things_total", "job", "kediff_test", "instance", "host/1", "run", c.run, "kind", c.kind)
				if !ok || got != c.want {
					t.Errorf("run %s kind %s: %v (found %v), want %v", c.run, c.kind, got, ok, c.want)
				}
			}
			if n := len(f.Series("kediff_test_things_total")); n != 4 {
				t.Errorf("%d series, want 4", n)
			}
		})
	}
}
