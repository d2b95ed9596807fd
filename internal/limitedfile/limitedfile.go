// Package limitedfile reads the small files kediff may be given without
// having written them (configs, checkpoint sidecars, tokenizer files),
// refusing one over a size limit before reading it, so that a huge file, a
// sparse one or an endless pipe costs no memory.
package limitedfile

import (
	"fmt"
	"io"
	"os"
)

// Read reads the file at path if it holds at most limit bytes. A larger
// regular file is refused from its size, before any byte is read; a file
// whose size the system does not know (a pipe) after limit+1 bytes. The
// error names the file and the limit, then says about, which tells the
// user what such a file should be.
func Read(path string, limit int64, about string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooBig := func() error {
		return fmt.Errorf("%s has more than %d bytes, over the limit: %s", path, limit, about)
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > limit {
		return nil, tooBig()
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, tooBig()
	}
	return data, nil
}
