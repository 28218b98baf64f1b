package chardev

import (
	"bytes"
	"testing"
)

func TestDropRing(t *testing.T) {
	tests := []struct {
		name        string
		writes      []string
		consume     int
		want        string
		wantDropped uint64
	}{
		{"fits", []string{"ab", "cd"}, 0, "abcd", 0},
		{"wraps", []string{"abcd", "ef"}, 0, "cdef", 2},
		{"bigger than the ring", []string{"ab", "0123456789"}, 0, "6789", 8},
		{"consume then wrap", []string{"abc", "def"}, 1, "cdef", 1},
		{"exactly full", []string{"abcd"}, 0, "abcd", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewDropRing(4)
			for i, w := range tt.writes {
				r.Write([]byte(w))
				if i == len(tt.writes)-2 {
					r.Consume(tt.consume)
				}
			}
			got := bytes.Join(r.Chunks(), nil)
			if string(got) != tt.want || r.Len() != len(tt.want) || r.Dropped() != tt.wantDropped {
				t.Errorf("ring holds %q (Len %d), dropped %d; want %q, %d", got, r.Len(), r.Dropped(), tt.want, tt.wantDropped)
			}
		})
	}
}
