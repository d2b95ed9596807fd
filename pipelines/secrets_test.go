package pipelines

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/s3test"
	"github.com/kediff/kediff/shards"
)

// Credentials in blob URLs or the environment never reach a log line, a
// stats file, the manifest, Parquet bytes (metadata, the Source column) or an
// error: each run below is grepped for the marker strings.
func TestSecretsNeverWritten(t *testing.T) {
	q := s3test.Query(s3test.Start(t, "raw", "train"))
	markers := []string{"MARKsecretENV1", "MARKtokenENV2", "MARKquerySECRET3", "MARKuserPASS4", "MARKendpointPASS5", "MARKsigSIG6"}
	// gofakes3 does not check signatures, so any key works against it.
	t.Setenv("AWS_SECRET_ACCESS_KEY", markers[0])
	t.Setenv("AWS_SESSION_TOKEN", markers[1])

	local := makeSample(t, 8, 4)
	ctx := context.Background()
	in, err := shards.OpenDir(ctx, "s3://raw/laion?"+q, false)
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(local, "*.tar"))
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		if err := in.WriteAll(ctx, filepath.Base(p), b, nil); err != nil {
			t.Fatal(err)
		}
	}
	in.Close()
	vals, _ := url.ParseQuery(q)
	ep, _ := url.Parse(vals.Get("endpoint"))
	ep.User = url.UserPassword("minio", markers[4])
	vals.Set("endpoint", ep.String())
	qEndpointPass := vals.Encode()

	tests := []struct {
		name, input, output string
		mayFail             bool // the driver may refuse the URL: then only the error and logs are checked
	}{
		{"env_credentials", "s3://raw/laion/*.tar?" + q, "s3://train/a?" + q, false},
		{"file_output_env_credentials", "s3://raw/laion/*.tar?" + q, "", false},
		{"query_credentials", "s3://raw/laion/*.tar?" + q + "&X-Amz-Security-Token=" + markers[2] + "&X-Amz-Signature=" + markers[5], "s3://train/b?" + q + "&aws_secret_access_key=" + markers[2], true},
		{"userinfo_credentials", "s3://AKIA:" + markers[3] + "@raw/laion/*.tar?" + q, "s3://train/c?" + q, true},
		{"endpoint_userinfo", "s3://raw/laion/*.tar?" + qEndpointPass, "s3://train/d?" + qEndpointPass, false},
		{"mem_query_credentials", "mem://x/*.tar?token=" + markers[2], "mem://out?secret=" + markers[2], true},
		{"file_userinfo", "file://u:" + markers[3] + "@localhost" + local + "/*.tar", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			outDir := t.TempDir()
			output := tt.output
			if output == "" {
				output = outDir
			}
			_, err := Preprocess(ctx, PreprocessOptions{Input: tt.input, Output: output, Config: testConfig(),
				Split: Split{0, 1}, Logger: log})
			if err != nil && !tt.mayFail {
				t.Fatalf("preprocess: %v", err)
			}
			texts := map[string][]byte{"log": logs.Bytes()}
			if err != nil {
				texts["error"] = []byte(err.Error())
				t.Logf("refused (%v)", err)
			}
			if err == nil {
				for name, b := range outputFiles(t, ctx, output) {
					texts[name] = b
				}
				if len(texts) < 4 {
					t.Fatalf("run wrote only %d files", len(texts)-1)
				}
			}
			for name, b := range texts {
				for _, m := range markers {
					if bytes.Contains(b, []byte(m)) {
						i := bytes.Index(b, []byte(m))
						t.Errorf("%s holds secret %s: ...%s...", name, m, b[max(0, i-80):min(len(b), i+40)])
					}
				}
			}
			if err == nil && !bytes.Contains(texts["log"], []byte("raw/laion")) {
				t.Errorf("log does not name the input at all:\n%s", texts["log"])
			}
		})
	}
}

// outputFiles returns every object of a run's output folder by name.
func outputFiles(t *testing.T, ctx context.Context, output string) map[string][]byte {
	t.Helper()
	b, err := shards.OpenDir(ctx, output, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out := map[string][]byte{}
	it := b.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			break
		}
		data, err := b.ReadAll(ctx, obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[obj.Key] = data
	}
	return out
}

func TestRedactHandler(t *testing.T) {
	red := shards.NewRedactor([]string{"s3://b/x?token=SEKRET"})
	var buf bytes.Buffer
	log := slog.New(&redactHandler{h: slog.NewTextHandler(&buf, nil), red: red})
	log.With("url", "s3://b/x?token=SEKRET").Info("open s3://b/x?token=SEKRET", "err", os.ErrNotExist,
		slog.Group("g", "u", "SEKRET"), "n", 3, "e", &os.PathError{Op: "open", Path: "SEKRET", Err: os.ErrNotExist})
	if s := buf.String(); strings.Contains(s, "SEKRET") || !strings.Contains(s, "n=3") || !strings.Contains(s, "token=REDACTED") {
		t.Errorf("log line %q", s)
	}
}
