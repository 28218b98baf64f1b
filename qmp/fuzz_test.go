package qmp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzInput feeds arbitrary client bytes through the framer and the
// request parser: no panic, every frame within the limit, and the
// stream always ends (no byte is read twice, none makes it loop).
func FuzzInput(f *testing.F) {
	for _, s := range []string{
		`{"execute":"qmp_capabilities"}`,
		`{"execute":"echo","arguments":{"text":"a\"}"},"id":[1,{"x":null}]}{"execute":"x"}`,
		"garbage {\"execute\":\"echo\"}\xff[1]]}\"str\" 12 true",
		`{"execute":"echo","arguments":{"text":"x","count":"y","bogus":1}}`,
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
		"{\"\\u00e9\\\\\": \"\\\"\"}\r\n\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 256
		fr := newFramer(bytes.NewReader(in), limit)
		for i := 0; i <= len(in); i++ {
			frame, err := fr.next()
			if errors.Is(err, errTooLarge) || errors.Is(err, errReset) {
				continue
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("next() = %v; want a value, EOF or a per-value error", err)
				}
				return
			}
			if len(frame) == 0 || len(frame) > limit {
				t.Fatalf("frame of %d bytes; want 1 to %d", len(frame), limit)
			}
			_, name, args, perr := parseRequest(frame)
			if perr == nil {
				var a echoArgs
				decodeArgs(args, &a)
				_ = name
			}
		}
		t.Fatalf("more frames than input bytes (%d)", len(in))
	})
}
