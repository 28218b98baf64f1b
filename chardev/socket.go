package chardev

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// SocketConfig is `-chardev socket,…` for a unix path.
type SocketConfig struct {
	ID     string
	Path   string
	Server bool // listen (server=on) or connect (server=off)
	Wait   bool // server: block at start until the first client connects
}

// Socket is a unix stream socket backend: a server that serves one
// client at a time (a second concurrent client is accepted and closed at
// once, so it sees EOF rather than hanging), or a client.
type Socket struct {
	cfg SocketConfig

	mu sync.Mutex
	// The fields below are guarded by mu.
	loop     *Loop
	sink     Sink
	listenFD int
	connFD   int
	closed   bool
}

// NewSocket returns a socket backend; Start binds or connects.
func NewSocket(cfg SocketConfig) *Socket {
	return &Socket{cfg: cfg, listenFD: -1, connFD: -1}
}

func (s *Socket) ID() string { return s.cfg.ID }

func (s *Socket) Start(loop *Loop, sink Sink) error {
	s.mu.Lock()
	s.loop, s.sink = loop, sink
	s.mu.Unlock()
	if !s.cfg.Server {
		fd, err := dialUnix(s.cfg.Path)
		if err != nil {
			return fmt.Errorf("chardev %s: connect %s: %w", s.cfg.ID, s.cfg.Path, err)
		}
		s.connected(fd)
		return nil
	}
	fd, err := listenUnix(s.cfg.Path)
	if err != nil {
		return fmt.Errorf("chardev %s: bind %s: %w", s.cfg.ID, s.cfg.Path, err)
	}
	s.mu.Lock()
	s.listenFD = fd
	s.mu.Unlock()
	if s.cfg.Wait {
		slog.Info("waiting for a connection", "chardev", s.cfg.ID, "path", s.cfg.Path)
		if err := waitReadable(fd); err != nil {
			return fmt.Errorf("chardev %s: wait for a client on %s: %w", s.cfg.ID, s.cfg.Path, err)
		}
		s.accept(0)
	}
	return loop.Add(fd, unix.EPOLLIN, s.accept)
}

// accept takes the next client; while one is connected, newcomers are
// closed at once.
func (s *Socket) accept(uint32) {
	for {
		s.mu.Lock()
		lfd := s.listenFD
		s.mu.Unlock()
		if lfd < 0 {
			return
		}
		fd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				slog.Warn("accept failed", "chardev", s.cfg.ID, "err", err)
			}
			return
		}
		s.mu.Lock()
		busy := s.connFD >= 0 || s.closed
		s.mu.Unlock()
		if busy {
			slog.Info("refusing a second client", "chardev", s.cfg.ID)
			unix.Close(fd)
			continue
		}
		s.connected(fd)
	}
}

func (s *Socket) connected(fd int) {
	s.mu.Lock()
	s.connFD = fd
	sink := s.sink
	s.mu.Unlock()
	sink.Connected(Conn{R: fd, W: fd, EOFIsDisconnect: true})
}

// Drop closes the connection; a server then serves the next client.
func (s *Socket) Drop(c Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.R >= 0 && c.R == s.connFD {
		unix.Close(s.connFD)
		s.connFD = -1
	}
}

func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.listenFD >= 0 {
		if s.loop != nil {
			s.loop.Remove(s.listenFD)
		}
		unix.Close(s.listenFD)
		s.listenFD = -1
		os.Remove(s.cfg.Path)
	}
	if s.connFD >= 0 {
		unix.Close(s.connFD)
		s.connFD = -1
	}
	return nil
}

// listenUnix binds path (replacing a stale socket file, as QEMU does,
// but never another kind of file) and listens.
func listenUnix(path string) (int, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return -1, fmt.Errorf("%s exists and is not a socket", path)
		}
		os.Remove(path)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 4); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func dialUnix(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func waitReadable(fd int) error {
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err
	}
}
