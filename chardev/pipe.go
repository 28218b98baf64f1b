package chardev

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Pipe is `-chardev pipe,path=P`: QEMU's rule — P.in (read by us) and
// P.out (written by us) when both exist, else P both ways. FIFOs are
// opened read-write, as QEMU does, so opening never waits for a peer and
// a FIFO with no reader never gives EPIPE: it fills, that port's writer
// waits, and a late reader gets every byte.
type Pipe struct {
	id, path string
	in, out  int
}

// NewPipe returns a pipe backend.
func NewPipe(id, path string) *Pipe { return &Pipe{id: id, path: path, in: -1, out: -1} }

func (p *Pipe) ID() string { return p.id }

func (p *Pipe) Start(_ *Loop, sink Sink) error {
	open := func(path string) (int, error) {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
	in, errIn := open(p.path + ".in")
	out, errOut := open(p.path + ".out")
	if errIn != nil || errOut != nil {
		if in >= 0 {
			unix.Close(in)
		}
		if out >= 0 {
			unix.Close(out)
		}
		fd, err := open(p.path)
		if err != nil {
			return fmt.Errorf("chardev %s: %w (nor %s.in and %s.out)", p.id, err, p.path, p.path)
		}
		in, out = fd, fd
	}
	p.in, p.out = in, out
	sink.Connected(NewFDConn(in, out))
	return nil
}

// Drop does nothing: the FIFOs stay open for the next reader and writer.
func (p *Pipe) Drop(Conn) {}

func (p *Pipe) Close() error {
	if p.in >= 0 {
		unix.Close(p.in)
	}
	if p.out >= 0 && p.out != p.in {
		unix.Close(p.out)
	}
	p.in, p.out = -1, -1
	return nil
}
