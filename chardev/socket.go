package chardev

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SocketConfig is `-chardev socket,…`: a unix path, or tcp host:port.
type SocketConfig struct {
	ID      string
	Path    string // unix socket path; empty for tcp
	Host    string // tcp host (empty means all addresses for a server)
	Port    int    // tcp port
	Server  bool   // listen (server=on) or connect (server=off)
	Wait    bool   // server: block at start until the first client connects
	NoDelay bool   // tcp: TCP_NODELAY
	// Reconnect is the retry interval of a client (reconnect=SECONDS):
	// a failed or lost connection is retried until the peer is back.
	Reconnect time.Duration
}

func (c SocketConfig) addr() string {
	if c.Path != "" {
		return c.Path
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// Socket is a stream socket backend: a server serving one client at a
// time, or a client, optionally reconnecting. While a server has its
// client, it stops accepting, as QEMU does: a second client waits in the
// listen backlog (what it writes is kept, not lost) and is served when
// the first leaves; beyond the backlog, connecting is refused.
type Socket struct {
	cfg SocketConfig

	mu sync.Mutex
	// The fields below are guarded by mu.
	loop     *Loop
	sink     Sink
	listenFD int
	listenW  *Watch // the listening fd's registration
	connFD   int
	conn     Conn // over connFD
	closed   bool
	retry    *time.Timer
}

// NewSocket returns a socket backend; Start binds or connects.
func NewSocket(cfg SocketConfig) *Socket {
	return &Socket{cfg: cfg, listenFD: -1, connFD: -1}
}

func (s *Socket) ID() string { return s.cfg.ID }

// Config is the socket's configuration (QMP's -mon listens on a
// -chardev socket's address itself).
func (s *Socket) Config() SocketConfig { return s.cfg }

// Addr is the bound or dialled address (a tcp server's real port when
// port=0 was asked for).
func (s *Socket) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listenFD >= 0 && s.cfg.Path == "" {
		if sa, err := unix.Getsockname(s.listenFD); err == nil {
			if in, ok := sa.(*unix.SockaddrInet4); ok {
				return net.JoinHostPort(net.IP(in.Addr[:]).String(), strconv.Itoa(in.Port))
			}
			if in, ok := sa.(*unix.SockaddrInet6); ok {
				return net.JoinHostPort(net.IP(in.Addr[:]).String(), strconv.Itoa(in.Port))
			}
		}
	}
	return s.cfg.addr()
}

func (s *Socket) Start(loop *Loop, sink Sink) error {
	s.mu.Lock()
	s.loop, s.sink = loop, sink
	s.mu.Unlock()
	if !s.cfg.Server {
		fd, err := s.dial()
		if err != nil {
			if s.cfg.Reconnect > 0 {
				slog.Info("peer not there yet; retrying", "chardev", s.cfg.ID, "addr", s.cfg.addr(), "err", err)
				s.scheduleRetry()
				return nil
			}
			return fmt.Errorf("chardev %s: connect %s: %w", s.cfg.ID, s.cfg.addr(), err)
		}
		s.connected(fd)
		return nil
	}
	fd, err := s.listen()
	if err != nil {
		return fmt.Errorf("chardev %s: bind %s: %w", s.cfg.ID, s.cfg.addr(), err)
	}
	s.mu.Lock()
	s.listenFD = fd
	s.mu.Unlock()
	if s.cfg.Wait {
		slog.Info("waiting for a connection", "chardev", s.cfg.ID, "addr", s.Addr())
		if err := waitReadable(fd); err != nil {
			return fmt.Errorf("chardev %s: wait for a client on %s: %w", s.cfg.ID, s.cfg.addr(), err)
		}
		s.accept(0)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	events := uint32(unix.EPOLLIN)
	if s.connFD >= 0 {
		events = 0
	}
	w, err := loop.Add(fd, events, s.accept)
	s.listenW = w
	return err
}

// accept takes the next client, then stops listening for more until it
// leaves.
func (s *Socket) accept(uint32) {
	s.mu.Lock()
	lfd, busy := s.listenFD, s.connFD >= 0 || s.closed
	s.mu.Unlock()
	if lfd < 0 || busy {
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
	if s.listenW != nil {
		s.listenW.Modify(0) // newcomers wait in the backlog
	}
	s.mu.Unlock()
	s.connected(fd)
}

func (s *Socket) connected(fd int) {
	if s.cfg.NoDelay && s.cfg.Path == "" {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		unix.Close(fd)
		return
	}
	s.connFD, s.conn = fd, NewStreamConn(fd)
	sink, c := s.sink, s.conn
	s.mu.Unlock()
	sink.Connected(c)
}

// Drop closes the connection; a server then serves the next client and
// a reconnecting client dials again.
func (s *Socket) Drop(c Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c == nil || c != s.conn {
		return
	}
	unix.Close(s.connFD)
	s.connFD, s.conn = -1, nil
	if s.cfg.Server && s.listenW != nil && !s.closed {
		s.listenW.Modify(unix.EPOLLIN) // serve the next client
	}
	if !s.cfg.Server && s.cfg.Reconnect > 0 && !s.closed {
		s.scheduleRetryLocked()
	}
}

func (s *Socket) scheduleRetry() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scheduleRetryLocked()
}

// scheduleRetryLocked dials again after the reconnect interval, off the
// event loop (a connect may take a while); the new connection is handed
// to the sink on the loop goroutine (Loop.Post). Caller holds mu.
func (s *Socket) scheduleRetryLocked() {
	s.retry = time.AfterFunc(s.cfg.Reconnect, func() {
		s.mu.Lock()
		stop, loop := s.closed || s.connFD >= 0, s.loop
		s.mu.Unlock()
		if stop {
			return
		}
		fd, err := s.dial()
		if err != nil {
			slog.Debug("reconnect failed", "chardev", s.cfg.ID, "err", err)
			s.scheduleRetry()
			return
		}
		if !loop.Post(func() {
			slog.Info("reconnected", "chardev", s.cfg.ID, "addr", s.cfg.addr())
			s.connected(fd)
		}) {
			unix.Close(fd) // the loop has ended
		}
	})
}

func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.retry != nil {
		s.retry.Stop()
	}
	if s.listenFD >= 0 {
		s.listenW.Remove()
		s.listenW = nil
		unix.Close(s.listenFD)
		s.listenFD = -1
		if s.cfg.Path != "" {
			os.Remove(s.cfg.Path)
		}
	}
	if s.connFD >= 0 {
		unix.Close(s.connFD)
		s.connFD, s.conn = -1, nil
	}
	return nil
}

// sockaddr resolves the configured address.
func (s *Socket) sockaddr() (int, unix.Sockaddr, error) {
	if s.cfg.Path != "" {
		return unix.AF_UNIX, &unix.SockaddrUnix{Name: s.cfg.Path}, nil
	}
	host := s.cfg.Host
	if host == "" {
		host = "0.0.0.0"
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return 0, nil, fmt.Errorf("resolve %s: %v", host, err)
	}
	if ip4 := ips[0].To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: s.cfg.Port}
		copy(sa.Addr[:], ip4)
		return unix.AF_INET, sa, nil
	}
	sa := &unix.SockaddrInet6{Port: s.cfg.Port}
	copy(sa.Addr[:], ips[0].To16())
	return unix.AF_INET6, sa, nil
}

// listen binds (replacing a stale unix socket file, as QEMU does, but
// never another kind of file) and listens.
func (s *Socket) listen() (int, error) {
	family, sa, err := s.sockaddr()
	if err != nil {
		return -1, err
	}
	if s.cfg.Path != "" {
		if st, err := os.Lstat(s.cfg.Path); err == nil {
			if st.Mode()&os.ModeSocket == 0 {
				return -1, fmt.Errorf("%s exists and is not a socket", s.cfg.Path)
			}
			os.Remove(s.cfg.Path)
		}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Listen(fd, 4); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (s *Socket) dial() (int, error) {
	family, sa, err := s.sockaddr()
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, sa); err != nil {
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
