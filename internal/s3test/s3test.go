// Package s3test serves a real S3 API (gofakes3, in memory) on loopback for
// tests, with an AWS environment that points the SDK at it and at nothing
// else (no credentials file, no instance metadata).
package s3test

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Start serves an S3 API holding the given empty buckets until t ends, sets
// the AWS environment for t, and returns the server's URL (the endpoint).
func Start(t testing.TB, buckets ...string) (endpoint string) {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server()) // binds 127.0.0.1
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	return srv.URL
}

// Query is the URL query of s3:// URLs that reach the S3 API at endpoint
// (Start's, or a proxy in front of it).
func Query(endpoint string) string {
	return url.Values{"endpoint": {endpoint}, "region": {"us-east-1"},
		"use_path_style": {"true"}, "disable_https": {"true"}}.Encode()
}
