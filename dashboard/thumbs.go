package dashboard

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"os"
	"sync"
	"time"

	xdraw "golang.org/x/image/draw"
)

// Thumbs caches the inline thumbnails of sample grids, so a trainer that
// writes the dashboard at every checkpoint reads and scales each grid once
// (a grid whose size or modification time changed is read again). The zero
// value is ready; a nil *Thumbs caches nothing.
type Thumbs struct {
	mu sync.Mutex
	m  map[thumbKey]thumb
}

type thumbKey struct {
	path string
	maxW int
}

type thumb struct {
	size    int64
	mod     time.Time
	dataURI string
	w, h    int
}

// get is path's grid as a PNG data: URI at most maxW pixels wide.
func (c *Thumbs) get(path string, maxW int) (thumb, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return thumb{}, err
	}
	k := thumbKey{path, maxW}
	if c != nil {
		c.mu.Lock()
		t, ok := c.m[k]
		c.mu.Unlock()
		if ok && t.size == fi.Size() && t.mod.Equal(fi.ModTime()) {
			return t, nil
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return thumb{}, err
	}
	t, err := makeThumb(raw, maxW)
	if err != nil {
		return thumb{}, fmt.Errorf("%s: %w", path, err)
	}
	t.size, t.mod = fi.Size(), fi.ModTime()
	if c != nil {
		c.mu.Lock()
		if c.m == nil {
			c.m = map[thumbKey]thumb{}
		}
		c.m[k] = t
		c.mu.Unlock()
	}
	return t, nil
}

// makeThumb is a PNG as a data: URI, scaled down to maxW pixels wide if
// wider (else its bytes as they are).
func makeThumb(raw []byte, maxW int) (thumb, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return thumb{}, fmt.Errorf("not a PNG: %w", err)
	}
	if cfg.Width <= maxW || cfg.Width == 0 {
		return thumb{dataURI: pngURI(raw), w: cfg.Width, h: cfg.Height}, nil
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return thumb{}, err
	}
	w := maxW
	h := max(1, cfg.Height*w/cfg.Width)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), xdraw.Src, nil)
	var buf bytes.Buffer
	if err := png.Encode(&buf, dst); err != nil {
		return thumb{}, err
	}
	return thumb{dataURI: pngURI(buf.Bytes()), w: w, h: h}, nil
}

func pngURI(b []byte) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b)
}
