package machine

import "testing"

// TestUntouchedPages: pages written are touched, the rest untouched (a
// page only read maps the zero page: either answer is right for it).
func TestUntouchedPages(t *testing.T) {
	m, err := NewMemory(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := m.Regions()[0].Host
	b[3*4096] = 1
	b[100*4096+4095] = 2
	sink = b[200*4096] // a read
	got := untouchedPages(b)
	if len(got) != len(b)/4096 {
		t.Fatalf("untouchedPages = %d entries; want %d", len(got), len(b)/4096)
	}
	for p, u := range got {
		want := p != 3 && p != 100
		if p != 200 && u != want {
			t.Errorf("untouchedPages()[%d] = %v; want %v", p, u, want)
		}
	}
}

var sink byte
