package qmp

import (
	"bufio"
	"errors"
	"io"
)

// The framer splits the client's byte stream into top-level JSON values
// without decoding them, the way QEMU's JSON streamer does: by nesting
// depth, outside strings. Values need no separator and may span lines.
// Memory is bounded: a value longer than the limit is read to its end
// and discarded, so one oversized command costs an error reply, not the
// connection (and not the host's memory).

var (
	// errTooLarge: the value was longer than the limit and was skipped.
	errTooLarge = errors.New("JSON command too large")
	// errReset: the client sent 0xFE or 0xFF, which QEMU's spec lets a
	// client use to abandon a partial command; the partial value is gone.
	errReset = errors.New("JSON parse error, stray byte")
)

// maxDepth bounds nesting, as QEMU's parser does (1024).
const maxDepth = 1024

type framer struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newFramer(r io.Reader, max int) *framer {
	return &framer{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next top-level value. errTooLarge and errReset are
// per-value: the caller replies and calls next again. Any other error
// is the stream's (io.EOF when the client is gone between values).
func (f *framer) next() ([]byte, error) {
	f.buf = f.buf[:0]
	var (
		depth    int
		inString bool
		escape   bool
		started  bool
		tooLarge bool
		scalar   bool // a bare literal or number: ends at a delimiter
	)
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			if err == io.EOF && scalar {
				return f.done(tooLarge)
			}
			if err == io.EOF && started {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if c == 0xfe || c == 0xff {
			if started {
				return nil, errReset
			}
			continue
		}
		if scalar {
			if isDelimiter(c) {
				f.r.UnreadByte()
				return f.done(tooLarge)
			}
		} else if !started {
			switch c {
			case ' ', '\t', '\r', '\n':
				continue
			}
			started = true
			switch c {
			case '{', '[':
				depth = 1
			case '"':
				inString = true
			case '}', ']':
				// An unmatched close: a one-byte value the decoder refuses.
				f.buf = append(f.buf, c)
				return f.done(false)
			default:
				scalar = true
			}
		} else if inString {
			switch {
			case escape:
				escape = false
			case c == '\\':
				escape = true
			case c == '"':
				inString = false
			}
		} else {
			switch c {
			case '"':
				inString = true
			case '{', '[':
				depth++
				if depth > maxDepth {
					tooLarge = true
				}
			case '}', ']':
				depth--
			}
		}
		if !tooLarge {
			if len(f.buf) >= f.max {
				tooLarge = true
				f.buf = f.buf[:0]
			} else {
				f.buf = append(f.buf, c)
			}
		}
		if !scalar && !inString && depth == 0 {
			return f.done(tooLarge)
		}
	}
}

func (f *framer) done(tooLarge bool) ([]byte, error) {
	if tooLarge {
		f.buf = f.buf[:0]
		if cap(f.buf) > 64<<10 {
			f.buf = nil // do not keep a large buffer for the session's life
		}
		return nil, errTooLarge
	}
	return f.buf, nil
}

// isDelimiter ends a bare literal or number.
func isDelimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '{', '}', '[', ']', ',', ':', '"':
		return true
	}
	return false
}
