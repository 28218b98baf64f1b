package soak

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Each backend has a manager goroutine that owns its connections: it
// connects, runs the two halves, and plays the departures the scheduler
// sends, handing the stream positions to the next peer.

func (p *peer) manage(ctx context.Context) {
	switch p.spec.Backend {
	case Socket:
		p.manageSocket(ctx)
	case Pty:
		p.managePty(ctx)
	case Pipe:
		p.managePipe(ctx)
	}
}

// sleep waits d or until ctx ends; false if it ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *peer) manageSocket(ctx context.Context) {
	path := p.env.sockPath(p.spec)
	for ctx.Err() == nil {
		c, err := dialUnix(ctx, path)
		if err != nil {
			return
		}
		rh, wh := p.startHalves(c, c)
		select {
		case e := <-p.cmds:
			kill := e.Kind == Kill
			wh.halt(kill) // polite: the writer finishes its write
			rh.halt(true)
			how := unix.SHUT_RD
			if kill {
				how = unix.SHUT_RDWR
			}
			unread, err := shutdownCount(c, how)
			c.Close()
			if err != nil {
				p.env.violate(p.spec.Name, "guest→host", p.rx.Offset, "cannot count unread bytes: "+err.Error())
			}
			// What it received but never read was its own to lose.
			p.rx.Skip(int64(unread))
			p.discarded.Add(int64(unread))
			p.count(e.Kind)
			p.env.logf("port %s: %s at guest→host offset %d (%d unread) host→guest offset %d; back in %v",
				p.spec.Name, e.Kind, p.rx.Offset, unread, p.txOff, e.For.D())
			if !sleep(ctx, e.For.D()) {
				return
			}
		case <-rh.done():
			end := p.lost(rh, wh)
			c.Close()
			if end {
				return
			}
		case <-wh.done():
			end := p.lost(rh, wh)
			c.Close()
			if end {
				return
			}
		case <-ctx.Done():
			wh.halt(true)
			rh.halt(true)
			c.Close()
			return
		}
	}
}

// dialUnix connects, retrying while vmm has not bound the socket yet.
func dialUnix(ctx context.Context, path string) (*net.UnixConn, error) {
	for {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
		if err == nil {
			return c, nil
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// shutdownCount shuts the socket (SHUT_RD: the device's next write
// fails and it sees the peer gone) and returns how many received bytes
// were left unread.
func shutdownCount(c *net.UnixConn, how int) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		unix.Shutdown(int(fd), how)
		n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil {
		return 0, err
	}
	return n, ierr
}

// managePty opens and closes the pty's slave. Bytes the guest wrote
// that the departing peer did not read stay in the pty for the next
// one (the tty outlives its slave while vmm holds the master), so the
// reader resumes exactly where it stopped.
func (p *peer) managePty(ctx context.Context) {
	path := p.env.ptyPath
	for ctx.Err() == nil {
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
		if err != nil {
			if p.env.expectedLoss() {
				return
			}
			p.env.violate(p.spec.Name, "", -1, fmt.Sprintf("open %s: %v", path, err))
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		if err := makeRaw(f); err != nil {
			p.env.violate(p.spec.Name, "", -1, fmt.Sprintf("raw mode on %s: %v", path, err))
		}
		rh, wh := p.startHalves(f, f)
		select {
		case e := <-p.cmds:
			wh.halt(false)
			rh.halt(true)
			f.Close()
			p.count(e.Kind)
			p.env.logf("port %s: pty peer away at guest→host offset %d host→guest offset %d; back in %v",
				p.spec.Name, p.rx.Offset, p.txOff, e.For.D())
			if !sleep(ctx, e.For.D()) {
				return
			}
		case <-rh.done():
			end := p.lost(rh, wh)
			f.Close()
			if end {
				return
			}
		case <-wh.done():
			end := p.lost(rh, wh)
			f.Close()
			if end {
				return
			}
		case <-ctx.Done():
			wh.halt(true)
			rh.halt(true)
			f.Close()
			return
		}
	}
}

// makeRaw keeps the line discipline out of the stream (vmm sets it on
// the master already; this guards a pty whose settings changed).
func makeRaw(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var terr error
	raw.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			terr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag = t.Cflag&^(unix.CSIZE|unix.PARENB) | unix.CS8
		terr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	return terr
}

// managePipe drives the pipe port: the host writes P.in and reads
// P.out. vmm holds both FIFOs open read-write, so closing the reader
// loses nothing: the FIFO fills, that port waits, the next reader
// resumes at the same offset.
func (p *peer) managePipe(ctx context.Context) {
	base := p.env.pipeBase(p.spec)
	var wh *half
	var in *os.File
	if p.spec.HostToGuest {
		f, err := os.OpenFile(base+".in", os.O_WRONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			p.env.violate(p.spec.Name, "", -1, err.Error())
			return
		}
		in = f
		defer in.Close()
	}
	for ctx.Err() == nil {
		out, err := os.OpenFile(base+".out", os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			p.env.violate(p.spec.Name, "", -1, err.Error())
			return
		}
		rh := startHalf(out.SetReadDeadline, p.readLoop(out))
		if wh == nil && in != nil {
			wh = startHalf(in.SetWriteDeadline, p.writeLoop(in))
		}
		p.countConn()
		select {
		case e := <-p.cmds:
			rh.halt(true)
			out.Close()
			p.count(e.Kind)
			p.env.logf("port %s: pipe reader closed at guest→host offset %d; back in %v", p.spec.Name, p.rx.Offset, e.For.D())
			if !sleep(ctx, e.For.D()) {
				wh.halt(true)
				return
			}
		case <-rh.done():
			end := p.lost(rh, nil)
			out.Close()
			if end {
				return
			}
		case <-wh.done():
			end := p.lost(nil, wh)
			wh = nil
			rh.halt(true)
			out.Close()
			if end {
				return
			}
		case <-ctx.Done():
			wh.halt(true)
			rh.halt(true)
			out.Close()
			return
		}
	}
	wh.halt(true)
}
