package caption

import (
	"fmt"
	"io"
	"os"
)

// Size limits on the files a captioner folder holds. The largest real
// tokenizer.json files (multilingual vocabularies of 250k tokens) are about
// 35 MB; configs are a few KB.
const (
	MaxTokenizerBytes = 64 << 20
	MaxConfigBytes    = 4 << 20
)

// readLimited reads the file at path, refusing one over limit bytes before
// reading it (and, for a file whose size the system does not know, such as a
// pipe, after reading limit+1 bytes), so that a huge file costs no memory.
func readLimited(path string, limit int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooBig := func(n int64) error {
		return fmt.Errorf("%s %s has %d bytes or more, over the limit of %d bytes (not a real %s; check the file)", what, path, n, limit, what)
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > limit {
		return nil, tooBig(st.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, tooBig(int64(len(data)))
	}
	return data, nil
}
