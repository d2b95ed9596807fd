package metrics_test

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/kediff/kediff/metrics"
)

func TestFlags(t *testing.T) {
	t.Run("none_is_a_nil_job", func(t *testing.T) {
		job, err := (&metrics.Flags{}).Start("kediff_test", nil, quietLog)
		if job != nil || err != nil {
			t.Fatalf("job %v, err %v", job, err)
		}
		job.End(nil) // a nil Job does nothing
	})
	t.Run("push_url_checked_first", func(t *testing.T) {
		for _, bad := range []string{"pushgateway:9091", "ftp://host/", "http://"} {
			_, err := (&metrics.Flags{Push: bad}).Start("kediff_test", nil, quietLog)
			if err == nil || !strings.Contains(err.Error(), "--metrics-push") {
				t.Errorf("--metrics-push %q: %v", bad, err)
			}
		}
	})
	t.Run("port_taken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, err = (&metrics.Flags{Addr: ln.Addr().String()}).Start("kediff_test", nil, quietLog)
		if err == nil || !strings.Contains(err.Error(), "metrics: listen on "+ln.Addr().String()) {
			t.Errorf("a taken port: %v", err)
		}
	})
	t.Run("failed_push_is_logged", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close() // nothing listens there now
		var logs bytes.Buffer
		job, err := (&metrics.Flags{Push: url}).Start("kediff_test", nil, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		job.End(nil)
		job.End(nil) // once only
		if n := strings.Count(logs.String(), "metrics: push failed"); n != 1 {
			t.Errorf("%d push failures logged:\n%s", n, logs.String())
		}
	})
}
