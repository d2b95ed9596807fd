package shards

import (
	"net/url"
	"os"
	"strings"
)

// Redacted replaces a secret in what RedactURL and RedactError return.
const Redacted = "REDACTED"

// RedactURL returns rawURL as it may be logged or stored (stats files, the
// manifest, Parquet metadata, the Source column, error messages): the
// password of a user:password@ userinfo and the values of query parameters
// that look like credentials (access keys, secrets, tokens, signatures,
// passwords, X-Amz-* and X-Goog-* parameters, Azure's sig) become
// "REDACTED"; everything else, including the parameter names and their
// order, is kept as written. A parameter whose value is itself a URL (an
// endpoint=https://user:pass@host) is redacted the same way. Strings that
// are not URLs (plain paths) come back unchanged. RedactURL is idempotent.
func RedactURL(rawURL string) string {
	frag := ""
	if i := strings.IndexByte(rawURL, '#'); i >= 0 {
		rawURL, frag = rawURL[:i], rawURL[i:]
	}
	head, query, hasQuery := strings.Cut(rawURL, "?")
	if i := strings.Index(head, "://"); i >= 0 {
		auth := head[i+3:]
		rest := ""
		if j := strings.IndexByte(auth, '/'); j >= 0 {
			auth, rest = auth[:j], auth[j:]
		}
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			if user, _, ok := strings.Cut(auth[:at], ":"); ok {
				auth = user + ":" + Redacted + auth[at:]
			}
		}
		head = head[:i+3] + auth + rest
	}
	if !hasQuery {
		return head + frag
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if secretParam(name) {
			params[i] = k + "=" + Redacted
			continue
		}
		if val, err := url.QueryUnescape(v); err == nil && strings.Contains(val, "://") {
			if r := RedactURL(val); r != val {
				params[i] = k + "=" + url.QueryEscape(r)
			}
		}
	}
	return head + "?" + strings.Join(params, "&") + frag
}

// secretParam reports whether a query parameter name looks like it carries
// a credential.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "x-amz-") || strings.HasPrefix(n, "x-goog-") {
		return true
	}
	n = strings.NewReplacer("_", "", "-", "", ".", "").Replace(n)
	switch n {
	case "sig", "key", "sas", "auth", "pass", "pwd":
		return true
	}
	for _, s := range []string{"secret", "token", "password", "passwd", "signature", "credential",
		"accesskey", "apikey", "accountkey", "sessionkey", "privatekey", "authorization"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// urlSecrets returns the secret strings of rawURL that RedactURL hides: the
// userinfo password and credential parameter values, as written and
// unescaped.
func urlSecrets(rawURL string) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 3 && s != Redacted { // shorter ones would blank out ordinary text
			out = append(out, s)
		}
		if u, err := url.QueryUnescape(s); err == nil && u != s && len(u) >= 3 {
			out = append(out, u)
		}
		if u, err := url.PathUnescape(s); err == nil && u != s && len(u) >= 3 {
			out = append(out, u)
		}
	}
	if i := strings.IndexByte(rawURL, '#'); i >= 0 {
		rawURL = rawURL[:i]
	}
	head, query, _ := strings.Cut(rawURL, "?")
	if i := strings.Index(head, "://"); i >= 0 {
		auth := head[i+3:]
		if j := strings.IndexByte(auth, '/'); j >= 0 {
			auth = auth[:j]
		}
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			if _, pass, ok := strings.Cut(auth[:at], ":"); ok {
				add(pass)
			}
		}
	}
	if query == "" {
		return out
	}
	for _, p := range strings.Split(query, "&") {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if secretParam(name) {
			add(v)
		} else if val, err := url.QueryUnescape(v); err == nil && strings.Contains(val, "://") {
			out = append(out, urlSecrets(val)...)
		}
	}
	return out
}

// Redactor scrubs the secrets of some URLs (see RedactURL) out of any text,
// such as an error message from a storage driver that quotes the URL it was
// given, or a log line.
type Redactor struct {
	r *strings.Replacer
}

// NewRedactor returns a Redactor for the secrets in urls and for the extra
// secret strings given as is (e.g. environment credentials). Secrets shorter
// than 3 bytes are not scrubbed: they would blank out ordinary text.
func NewRedactor(urls []string, extra ...string) *Redactor {
	var pairs []string
	seen := map[string]bool{}
	for _, s := range append(secretsOf(urls), extra...) {
		if len(s) < 3 || seen[s] {
			continue
		}
		seen[s] = true
		pairs = append(pairs, s, Redacted)
	}
	if len(pairs) == 0 {
		return &Redactor{}
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

func secretsOf(urls []string) []string {
	var out []string
	for _, u := range urls {
		out = append(out, urlSecrets(u)...)
	}
	return out
}

// String returns s with every secret replaced by "REDACTED".
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Error returns err with its message scrubbed; errors.Is and errors.As still
// see the errors it wraps. A nil err stays nil, and an error with nothing to
// scrub is returned as is.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := r.String(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactError scrubs the secrets of urls (see RedactURL) from err's message.
func RedactError(err error, urls ...string) error {
	if err == nil {
		return nil
	}
	return NewRedactor(urls).Error(err)
}

// credentialEnv names environment variables that hold object-store
// credentials.
var credentialEnv = []string{
	"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
	"AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET",
	"GOOGLE_OAUTH_ACCESS_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
}

// EnvSecrets returns the values of the credential environment variables set
// (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AZURE_STORAGE_KEY, HF_TOKEN,
// ...), for NewRedactor. Values under 8 bytes (test placeholders such as
// "test"; real keys are 40 bytes or more) are left out, so that they do not
// blank out ordinary words.
func EnvSecrets() []string {
	var out []string
	for _, k := range credentialEnv {
		if v := os.Getenv(k); len(v) >= 8 {
			out = append(out, v)
		}
	}
	return out
}
