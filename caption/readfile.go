package caption

import "github.com/kediff/kediff/internal/limitedfile"

// Size limits on the files a captioner folder holds. The largest real
// tokenizer.json files (multilingual vocabularies of 250k tokens) are about
// 35 MB; configs are a few KB.
const (
	MaxTokenizerBytes = 64 << 20
	MaxConfigBytes    = 4 << 20
)

// readLimited reads the file at path within limit bytes (what names the
// kind of file in the error).
func readLimited(path string, limit int64, what string) ([]byte, error) {
	return limitedfile.Read(path, limit, "not a real "+what+"; check the file")
}
