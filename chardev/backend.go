package chardev

// Sink receives a backend's connection events, on the loop goroutine
// (or during Start): timers and watcher goroutines reach it through
// Loop.Post.
type Sink interface {
	Connected(c Conn)
	// Disconnected is called when the backend itself loses the peer
	// (rare: most disconnects are seen by the port, which calls Drop).
	Disconnected()
}

// Backend is a host character device behind a guest port.
type Backend interface {
	// ID is the -chardev id.
	ID() string
	// Start opens, binds, listens or connects, and reports connections
	// to sink. A socket server with wait=on blocks here until its first
	// client arrives, as QEMU does.
	Start(loop *Loop, sink Sink) error
	// Drop ends the current connection after the port saw the peer
	// leave or an error on it: the backend closes its fds and, if it
	// can, waits for the next peer (a server accepts again).
	Drop(c Conn)
	// Close releases everything.
	Close() error
}
