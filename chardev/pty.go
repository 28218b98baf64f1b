package chardev

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Pty is `-chardev pty`: a new pseudo-terminal whose slave path is
// printed on stderr as QEMU prints it. The peer is "connected" while
// some process has the slave open: with none, the master reports
// POLLHUP (and reads fail with EIO), which a watcher goroutine polls
// for, as QEMU does, since epoll gives no edge when a slave opens. The
// watcher only looks: it posts what it saw to the event loop, where the
// sink hears of it.
type Pty struct {
	id string

	mu sync.Mutex
	// The fields below are guarded by mu.
	loop     *Loop
	master   int
	path     string
	sink     Sink
	attached bool // a Connected was posted and no Drop came since
	hupSent  bool // a Disconnected was posted for this attachment
	stop     chan struct{}
}

// ptyPoll is how often the watcher looks for a peer attaching or leaving.
const ptyPoll = 50 * time.Millisecond

// NewPty returns a pty backend.
func NewPty(id string) *Pty { return &Pty{id: id, master: -1} }

func (p *Pty) ID() string { return p.id }

// Path is the slave's path, e.g. /dev/pts/3.
func (p *Pty) Path() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.path
}

func (p *Pty) Start(loop *Loop, sink Sink) error {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("chardev %s: open /dev/ptmx: %w", p.id, err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return fmt.Errorf("chardev %s: unlock pty: %w", p.id, err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		unix.Close(m)
		return fmt.Errorf("chardev %s: pty number: %w", p.id, err)
	}
	// Raw: the guest's bytes pass unchanged (no echo, no CR/LF games).
	if t, err := unix.IoctlGetTermios(m, unix.TCGETS); err == nil {
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag = t.Cflag&^(unix.CSIZE|unix.PARENB) | unix.CS8
		unix.IoctlSetTermios(m, unix.TCSETS, t)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	// A master whose slave was never opened does not report POLLHUP;
	// open and close the slave once (as openpty + close in QEMU does) so
	// "no peer" reads as a hang-up from the start.
	if sfd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(sfd)
	}
	p.mu.Lock()
	p.loop, p.master, p.path, p.sink, p.stop = loop, m, path, sink, make(chan struct{})
	p.mu.Unlock()
	fmt.Fprintf(os.Stderr, "char device redirected to %s (label %s)\n", path, p.id)
	go p.watch()
	return nil
}

// watch reports a peer attaching (no POLLHUP on the master) and leaving,
// through the event loop.
func (p *Pty) watch() {
	t := time.NewTicker(ptyPoll)
	defer t.Stop()
	for {
		p.mu.Lock()
		m, stop := p.master, p.stop
		p.mu.Unlock()
		if m < 0 {
			return
		}
		fds := []unix.PollFd{{Fd: int32(m), Events: unix.POLLIN}}
		unix.Poll(fds, 0)
		hup := fds[0].Revents&unix.POLLHUP != 0
		p.mu.Lock()
		var post func()
		switch {
		case !p.attached && !hup:
			p.attached, p.hupSent = true, false
			sink, path, c := p.sink, p.path, NewStreamConn(m)
			post = func() {
				slog.Info("pty peer attached", "chardev", p.id, "path", path)
				sink.Connected(c)
			}
		case p.attached && hup && !p.hupSent:
			p.hupSent = true
			post = p.sink.Disconnected // calls Drop, which clears attached
		}
		loop := p.loop
		p.mu.Unlock()
		if post != nil {
			loop.Post(post)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// Drop notes that the peer left; the master stays for the next one.
func (p *Pty) Drop(Conn) {
	p.mu.Lock()
	p.attached = false
	p.mu.Unlock()
}

func (p *Pty) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		close(p.stop)
		p.stop = nil
	}
	if p.master >= 0 {
		unix.Close(p.master)
		p.master = -1
	}
	return nil
}
