package unet

import (
	"slices"
	"strings"
	"testing"
)

// TestForwardEncodedEqualsForward checks the split a sampler relies on: the
// text encoder of one model, run once, and the U-Net of another model that
// shares it give exactly what the second model's own Forward gives, in
// training and in NoGrad mode, for both configs' branches.
func TestForwardEncodedEqualsForward(t *testing.T) {
	for _, cfg := range []Config{TinyConfig(), altConfig()} {
		a := randomModel(t, cfg, 3)
		b := randomModel(t, cfg, 4)
		// b gets a's text encoder; everything else differs
		for _, v := range a.Params.Layout.Views() {
			if IsTextEncoder(v.Name) {
				copy(b.Params.Get(v.Name), a.Params.Get(v.Name))
			}
		}
		in, _, _ := testBatch(cfg, 3, 9)
		want, err := b.Forward(in)
		if err != nil {
			t.Fatal(err)
		}
		want = slices.Clone(want)
		for _, noGrad := range []bool{false, true} {
			a.NoGrad, b.NoGrad = noGrad, noGrad
			xf, err := a.EncodeText(in.Tokens, in.Mask)
			if err != nil {
				t.Fatal(err)
			}
			if len(xf) != in.N()*a.TextFloats() {
				t.Fatalf("encoding has %d values", len(xf))
			}
			got, err := b.ForwardEncoded(in, xf)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("NoGrad %v: ForwardEncoded differs from Forward (rel err %.3g)", noGrad, relErr(got, want))
			}
			if noGrad && len(b.grad) != 0 {
				t.Errorf("NoGrad model holds %d gradient values", len(b.grad))
			}
		}
		if _, err := b.Loss(in, make([]float32, len(want)), nil, true); err == nil || !strings.Contains(err.Error(), "NoGrad") {
			t.Errorf("gradients in NoGrad mode: %v", err)
		}
		// an inference model (values only) with b's weights computes the same
		inf, err := NewInferenceModel(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := inf.LoadStateDict(b.StateDict()); err != nil {
			t.Fatal(err)
		}
		if got, err := inf.Forward(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("inference model: %v, outputs equal %v", err, slices.Equal(got, want))
		}
		if inf.Params.Grad != nil || inf.Params.M != nil {
			t.Error("inference model holds gradients or optimizer moments")
		}
		if _, _, err := inf.TrainStep(in, make([]float32, len(want)), nil, DefaultOptim()); err == nil {
			t.Error("training step on an inference model")
		}
		if _, err := b.ForwardEncoded(in, make([]float32, 5)); err == nil || !strings.Contains(err.Error(), "text encoding") {
			t.Errorf("short encoding: %v", err)
		}
		if _, err := a.EncodeText(in.Tokens[:3], in.Mask[:3]); err == nil {
			t.Error("partial prompt encoded")
		}
	}
}
