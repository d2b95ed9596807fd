package imaging

import (
	"testing"
	"time"
)

// BenchmarkProcess640x480 is the pipeline's image stage on a 640x480
// photo-like JPEG: decode (DCT-scaled) -> centre crop 256 -> JPEG q95, with
// BareTurboDecode640x480 (full-size decode only) as the anchor. Compare
// images/s of the two.
func BenchmarkProcess640x480(b *testing.B) {
	data := readFile(b, "photo.jpg")
	for _, pure := range []bool{false, true} {
		name := "turbo"
		if pure {
			name = "purego"
		} else if !loadTurbo() {
			continue
		}
		b.Run(name, func(b *testing.B) {
			p := newP(b, Options{PureGo: pure})
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Process(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

func BenchmarkBareTurboDecode640x480(b *testing.B) {
	d, err := NewBareTurboDecoder()
	if err != nil {
		b.Skip(err)
	}
	defer d.Close()
	data := readFile(b, "photo.jpg")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkPipelineVsBare alternates one bare full-size decode, one Process
// (the default path, YUV for this JPEG) and one Process forced onto the RGB
// path, on the same JPEG, and reports each Process's rate as a percentage
// of the bare decode rate; interleaving keeps the ratios meaningful on a
// busy machine. The target is >= 80 for the default path.
func BenchmarkPipelineVsBare(b *testing.B) {
	d, err := NewBareTurboDecoder()
	if err != nil {
		b.Skip(err)
	}
	defer d.Close()
	p := newP(b, Options{})
	rgb := newP(b, Options{})
	rgb.yuvOK = false
	data := readFile(b, "photo.jpg")
	var tb, tp, tr time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, _, err := d.Decode(data); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := p.Process(data); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := rgb.Process(data); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		tb, tp, tr = tb+t1.Sub(t0), tp+t2.Sub(t1), tr+t3.Sub(t2)
	}
	b.ReportMetric(100*tb.Seconds()/tp.Seconds(), "%_of_bare_rate")
	b.ReportMetric(100*tb.Seconds()/tr.Seconds(), "rgb_%_of_bare_rate")
	b.ReportMetric(float64(tb.Microseconds())/float64(b.N), "bare_us/op")
	b.ReportMetric(float64(tp.Microseconds())/float64(b.N), "pipeline_us/op")
	b.ReportMetric(float64(tr.Microseconds())/float64(b.N), "rgb_us/op")
}
