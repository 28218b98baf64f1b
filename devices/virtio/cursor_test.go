package virtio

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func chainOf(readable, writable [][]byte) *Chain {
	c := &Chain{Readable: readable, Writable: writable}
	for _, b := range readable {
		c.ReadableLen += uint32(len(b))
	}
	for _, b := range writable {
		c.WritableLen += uint32(len(b))
	}
	return c
}

func TestReader(t *testing.T) {
	tests := []struct {
		name  string
		bufs  [][]byte
		steps []int // Read sizes
	}{
		{"one buffer", [][]byte{[]byte("abcdef")}, []int{2, 2, 2}},
		{"across buffers", [][]byte{[]byte("ab"), []byte("cde"), []byte("f")}, []int{3, 3}},
		{"empty buffers", [][]byte{{}, []byte("abc"), {}, []byte("def"), {}}, []int{1, 4, 1}},
		{"all at once", [][]byte{[]byte("abc"), []byte("def")}, []int{10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(chainOf(tt.bufs, nil))
			var got []byte
			for _, n := range tt.steps {
				p := make([]byte, n)
				k, err := r.Read(p)
				if err != nil {
					t.Fatalf("Read(%d bytes) = %d, %v; want nil error", n, k, err)
				}
				got = append(got, p[:k]...)
			}
			if string(got) != "abcdef" || r.Len() != 0 || r.Consumed() != 6 {
				t.Errorf("read %q, Len %d, Consumed %d; want \"abcdef\", 0, 6", got, r.Len(), r.Consumed())
			}
			if k, err := r.Read(make([]byte, 1)); k != 0 || err != io.EOF {
				t.Errorf("Read at the end = %d, %v; want 0, EOF", k, err)
			}
		})
	}
}

func TestReaderIovecsAdvance(t *testing.T) {
	r := NewReader(chainOf([][]byte{[]byte("ab"), {}, []byte("cde"), []byte("f")}, nil))
	for _, tt := range []struct {
		advance int
		want    string
	}{{0, "ab|cde|f"}, {1, "b|cde|f"}, {1, "cde|f"}, {3, "f"}, {5, ""}} {
		r.Advance(tt.advance)
		if got := string(bytes.Join(r.Iovecs(), []byte("|"))); got != tt.want {
			t.Errorf("after Advance(%d): Iovecs() = %q; want %q", tt.advance, got, tt.want)
		}
	}
	if r.Len() != 0 || r.Consumed() != 6 {
		t.Errorf("Len, Consumed = %d, %d; want 0, 6", r.Len(), r.Consumed())
	}
}

func TestReaderIovecsMax(t *testing.T) {
	bufs := make([][]byte, 3000)
	for i := range bufs {
		bufs[i] = []byte{byte(i)}
	}
	r := NewReader(chainOf(bufs, nil))
	if n := len(r.Iovecs()); n != maxIovecs {
		t.Errorf("len(Iovecs()) = %d; want %d (IOV_MAX)", n, maxIovecs)
	}
}

func TestWriter(t *testing.T) {
	a, b := make([]byte, 2), make([]byte, 3)
	w := NewWriter(chainOf(nil, [][]byte{a, {}, b}))
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("Write(abc) = %d, %v; want 3, nil", n, err)
	}
	if n, err := w.Write([]byte("defg")); n != 2 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("Write(defg) = %d, %v; want 2, ErrShortWrite", n, err)
	}
	if string(a)+string(b) != "abcde" || w.Consumed() != 5 || w.Len() != 0 {
		t.Errorf("buffers %q %q, Consumed %d, Len %d; want \"ab\" \"cde\", 5, 0", a, b, w.Consumed(), w.Len())
	}
}

// TestPopOrEnableNotification: an empty queue re-enables notifications
// and reports nothing; a chain offered while they were off is popped.
func TestPopOrEnableNotification(t *testing.T) {
	d := newDriver(t, 8, 0, nil)
	d.q.DisableNotifications()
	d.Add(w(4))
	c, err := d.q.PopOrEnableNotification()
	if err != nil || c == nil {
		t.Fatalf("PopOrEnableNotification() = %v, %v; want the chain", c, err)
	}
	if c, err := d.q.PopOrEnableNotification(); c != nil || err != nil {
		t.Fatalf("PopOrEnableNotification() on an empty queue = %v, %v; want nil, nil", c, err)
	}
	if f := d.Get16(tUsed); f&usedFNoNotify != 0 {
		t.Errorf("used flags = %#x after an empty PopOrEnableNotification; want notifications on", f)
	}
}
