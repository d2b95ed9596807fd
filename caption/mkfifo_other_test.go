//go:build !unix

package caption

import "errors"

func mkfifo(string) error { return errors.New("no fifos") }
