package shards

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain_path", "/data/in/{00000..00009}.tar", "/data/in/{00000..00009}.tar"},
		{"no_secrets", "s3://b/k/*.tar?endpoint=http%3A%2F%2Fh%3A9000&region=us-east-1", "s3://b/k/*.tar?endpoint=http%3A%2F%2Fh%3A9000&region=us-east-1"},
		{"userinfo_password", "https://user:hunter2@host/x.tar", "https://user:REDACTED@host/x.tar"},
		{"userinfo_user_only", "https://user@host/x.tar", "https://user@host/x.tar"},
		{"presigned_s3", "https://b.s3.amazonaws.com/k.tar?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=abc123&x-id=GetObject",
			"https://b.s3.amazonaws.com/k.tar?X-Amz-Algorithm=REDACTED&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&x-id=GetObject"},
		{"named_params", "s3://b/k?region=r&aws_secret_access_key=S1&AccessKey=S2&token=S3&api-key=S4&password=S5",
			"s3://b/k?region=r&aws_secret_access_key=REDACTED&AccessKey=REDACTED&token=REDACTED&api-key=REDACTED&password=REDACTED"},
		{"azure_sas", "azblob://c/k?sv=2022&sig=abc%2Bdef&se=2026", "azblob://c/k?sv=2022&sig=REDACTED&se=2026"},
		{"gcs_signed", "https://storage.googleapis.com/b/o?X-Goog-Signature=ff", "https://storage.googleapis.com/b/o?X-Goog-Signature=REDACTED"},
		{"endpoint_with_userinfo", "s3://b/k?endpoint=http%3A%2F%2Fu%3Apw%40h%3A9000&region=r", "s3://b/k?endpoint=http%3A%2F%2Fu%3AREDACTED%40h%3A9000&region=r"},
		{"fragment_kept", "s3://b/k.tar?token=x#000001.jpg", "s3://b/k.tar?token=REDACTED#000001.jpg"},
		{"bad_escape", "s3://b/k?%zz=1&secret=%zz", "s3://b/k?%zz=1&secret=REDACTED"},
		{"message_with_url", "input s3://u:pw@b/k.tar", "input s3://u:REDACTED@b/k.tar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactURL(tt.in)
			if got != tt.want {
				t.Errorf("RedactURL(%q)\n = %q\nwant %q", tt.in, got, tt.want)
			}
			if again := RedactURL(got); again != got {
				t.Errorf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

func TestRedactError(t *testing.T) {
	u := "s3://b/k?endpoint=http%3A%2F%2Fu%3Apa%24%24word%40h&X-Amz-Security-Token=tok%2Fen"
	// A driver may quote the URL as given or unescaped.
	base := &fs.PathError{Op: "open", Path: "http://u:pa$$word@h tok/en tok%2Fen", Err: fs.ErrNotExist}
	err := RedactError(base, u)
	if msg := err.Error(); strings.Contains(msg, "pa$$word") || strings.Contains(msg, "tok/en") || strings.Contains(msg, "tok%2Fen") {
		t.Errorf("error still holds a secret: %s", msg)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("redacted error lost its cause")
	}
	if RedactError(nil, u) != nil {
		t.Error("nil error became non-nil")
	}
	if e := errors.New("nothing here"); RedactError(e, u) != e {
		t.Error("error without secrets was rewrapped")
	}
	r := NewRedactor(nil, "ENVSECRET", "ab")
	if got := r.String("x ENVSECRET ab"); got != "x REDACTED ab" {
		t.Errorf("extra secrets: %q", got)
	}
}

func FuzzRedactURL(f *testing.F) {
	f.Add("s3://u:p@b/k?token=x&region=r#m")
	f.Add("https://h/x?endpoint=http%3A%2F%2Fu%3Apw%40h")
	f.Fuzz(func(t *testing.T, s string) {
		r := RedactURL(s)
		if RedactURL(r) != r {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, r, RedactURL(r))
		}
		// Each secret occurs less often once redacted (it may also occur in
		// a part of the URL that is kept, or inside "REDACTED"); one that s
		// holds only percent-encoded (a NUL, say) must not appear decoded.
		for _, sec := range urlSecrets(s) {
			n, m := strings.Count(s, sec), strings.Count(r, sec)
			if len(sec) >= 3 && !strings.Contains(Redacted, sec) && (n > 0 && m >= n || n == 0 && m > 0) {
				t.Fatalf("RedactURL(%q) = %q still holds %q", s, r, sec)
			}
		}
	})
}

func TestEnvSecrets(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_SESSION_TOKEN", "test") // a placeholder: too short to scrub
	got := EnvSecrets()
	if !slices.Contains(got, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") || slices.Contains(got, "test") {
		t.Errorf("EnvSecrets() = %q", got)
	}
}
