package chardev

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Null is `-chardev null`: always connected, output discarded, no input.
// It is its own connection.
type Null struct{ id string }

// NewNull returns a null backend.
func NewNull(id string) *Null { return &Null{id: id} }

func (n *Null) ID() string { return n.id }

func (n *Null) Start(_ *Loop, sink Sink) error {
	sink.Connected(n)
	return nil
}

func (n *Null) Drop(Conn)    {}
func (n *Null) Close() error { return nil }

// Readv finds no input, ever.
func (n *Null) Readv([][]byte) (int, error) { return 0, io.EOF }

// Writev takes everything and keeps nothing.
func (n *Null) Writev(bufs [][]byte) (int, error) {
	k := 0
	for _, b := range bufs {
		k += len(b)
	}
	return k, nil
}

func (n *Null) Pending() (int, bool)                         { return 0, true }
func (n *Null) Salvage(dst []byte) []byte                    { return dst }
func (n *Null) Watch(*Loop, func(Ready)) (*ConnWatch, error) { return nil, nil }

// File is `-chardev file,path=P[,input-path=I]`: output appended to P
// (QEMU truncates by default; append=on keeps old content — here the
// default is append, see NewFile), input read from I until its end.
type File struct {
	id, path, inputPath string
	appendMode          bool
	out, in             int
}

// NewFile returns a file backend; appendMode false truncates P at start.
func NewFile(id, path, inputPath string, appendMode bool) *File {
	return &File{id: id, path: path, inputPath: inputPath, appendMode: appendMode, out: -1, in: -1}
}

func (f *File) ID() string { return f.id }

func (f *File) Start(_ *Loop, sink Sink) error {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_CLOEXEC | unix.O_APPEND
	if !f.appendMode {
		flags |= unix.O_TRUNC
	}
	out, err := unix.Open(f.path, flags, 0o644)
	if err != nil {
		return fmt.Errorf("chardev %s: %w", f.id, &os.PathError{Op: "open", Path: f.path, Err: err})
	}
	f.out = out
	if f.inputPath != "" {
		in, err := unix.Open(f.inputPath, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			unix.Close(out)
			return fmt.Errorf("chardev %s: input: %w", f.id, &os.PathError{Op: "open", Path: f.inputPath, Err: err})
		}
		f.in = in
	}
	sink.Connected(NewFDConn(f.in, f.out))
	return nil
}

// Drop does nothing: a file does not go away.
func (f *File) Drop(Conn) {}

func (f *File) Close() error {
	for _, fd := range []int{f.in, f.out} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	f.in, f.out = -1, -1
	return nil
}

// Stdio is `-chardev stdio[,signal=on|off]`: the process's own stdin and
// stdout, opened anew through /proc/self/fd so that making them
// non-blocking does not change the descriptions the shell (or COM1's
// writer) shares. A terminal is put in raw mode; with signal=on (QEMU's
// default) ^C still interrupts vmm, with signal=off it goes to the guest.
// With an Escape (SetEscape), QEMU's Ctrl-A keys are taken out of the
// input first, whatever signal= says.
type Stdio struct {
	id      string
	signal  bool
	in, out int
	term    *Terminal
	esc     *Escape
	mux     *escapeMux
}

// SetEscape makes Start filter input through e (QEMU's mux=on). Call it
// before Start.
func (s *Stdio) SetEscape(e *Escape) { s.esc = e }

// NewStdio returns a stdio backend.
func NewStdio(id string, signal bool) *Stdio { return &Stdio{id: id, signal: signal, in: -1, out: -1} }

func (s *Stdio) ID() string { return s.id }

func (s *Stdio) Start(loop *Loop, sink Sink) error {
	var err error
	if s.out, err = reopenNonblock(1, unix.O_WRONLY); err != nil {
		return fmt.Errorf("chardev %s: stdout: %w", s.id, err)
	}
	if s.in, err = reopenNonblock(0, unix.O_RDONLY); err != nil {
		s.in = -1 // no usable stdin (closed): output only
	}
	if IsTerminal(0) {
		if s.term, err = makeRaw(0, s.signal); err != nil {
			return fmt.Errorf("chardev %s: %w", s.id, err)
		}
	}
	r := s.in
	if s.esc != nil && s.in >= 0 {
		s.mux, err = newEscapeMux(loop, s.in, s.esc)
		switch {
		case err == nil:
			r = s.mux.r
		case !errors.Is(err, ErrNotPollable): // a regular file is read as it is
			return fmt.Errorf("chardev %s: %w", s.id, err)
		}
	}
	sink.Connected(NewFDConn(r, s.out))
	return nil
}

// reopenNonblock returns a new non-blocking description of fd's file.
// Sockets cannot be reopened; for them the fd is dup'ed and made
// non-blocking, which the owner of the original then shares.
func reopenNonblock(fd, mode int) (int, error) {
	// A regular file never blocks, and a new description of it would
	// start at offset 0 without O_APPEND, writing over what the shell
	// (`>>`, or earlier output in the same file) put there: share it.
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
		return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	}
	nfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), mode|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == nil {
		return nfd, nil
	}
	nfd, derr := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if derr != nil {
		return -1, err
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return -1, err
	}
	return nfd, nil
}

func (s *Stdio) Drop(Conn) {}

func (s *Stdio) Close() error {
	if s.mux != nil {
		s.mux.close()
		s.mux = nil
	}
	if s.term != nil {
		s.term.Restore()
		s.term = nil
	}
	for _, fd := range []int{s.in, s.out} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	s.in, s.out = -1, -1
	return nil
}
