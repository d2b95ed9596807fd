package caption

import "testing"

func TestChoose(t *testing.T) {
	if p, s := Choose("k", "orig", "gen", 1, 1); p != "gen" || s != SourceGenerated {
		t.Errorf("Choose(fraction 1) = %q %q", p, s)
	}
	if p, s := Choose("k", "orig", "", 1, 1); p != "orig" || s != SourceCaption {
		t.Errorf("an empty generated caption must not replace the prompt: %q %q", p, s)
	}
	if p, s := Choose("k", "orig", "gen", 1, 0); p != "orig" || s != SourceCaption {
		t.Errorf("Choose(fraction 0) = %q %q", p, s)
	}
}
