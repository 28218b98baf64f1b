// Package qmp is a QEMU Machine Protocol server (QEMU's
// docs/interop/qmp-spec.rst): the greeting, capabilities negotiation,
// commands with typed arguments registered in a table, replies, errors
// with QEMU's classes, and events.
//
// Each listener serves one client at a time, as a QEMU monitor does:
// others wait in the listen backlog. Input is a stream of JSON values
// (no line structure), each bounded in size. Output — replies and events
// in the order they were produced — goes through a bounded per-client
// queue: a client that stops reading is dropped once the queue is full,
// and whoever emits an event never waits.
//
// Threads: a reader and a writer goroutine per client. Commands run one
// at a time across all clients (execMu, QEMU's "big lock" for the
// monitor), on the reader goroutine. Emit may be called from any
// goroutine with any lock held: it takes only mu, a leaf.
package qmp

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"
)

// Version is what the greeting and query-version report.
type Version struct {
	Major, Minor, Micro int
	Package             string
}

// Config describes a server.
type Config struct {
	Version Version
	// MaxCommand bounds one command's JSON text (default 1 MiB).
	MaxCommand int
	// QueueLen bounds a client's unsent replies and events (default 4096).
	QueueLen int
}

// Server is the command table and the set of connected clients of one
// or more monitors (listeners). Events go to every negotiated client.
type Server struct {
	cfg      Config
	commands map[string]*command

	execMu sync.Mutex // held while a command runs

	mu sync.Mutex
	// The fields below are guarded by mu.
	sessions  map[*session]bool
	listeners map[net.Listener]bool
	closed    bool

	serving sync.WaitGroup // Serve loops
}

type command struct {
	name string
	run  func(c *Call, raw json.RawMessage) (any, error)
}

// Call is the context of one command: what runs after its reply is queued.
type Call struct {
	after []func()
}

// After runs f once the command's reply is queued (quit's way of
// replying before the VM goes).
func (c *Call) After(f func()) { c.after = append(c.after, f) }

// New returns a server with qmp_capabilities, query-version and
// query-commands registered.
func New(cfg Config) *Server {
	if cfg.MaxCommand <= 0 {
		cfg.MaxCommand = 1 << 20
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 4096
	}
	s := &Server{cfg: cfg, commands: map[string]*command{},
		sessions: map[*session]bool{}, listeners: map[net.Listener]bool{}}
	// qmp_capabilities is handled by the session; it is listed here so
	// that query-commands names it.
	Handle(s, "qmp_capabilities", func(*Call, *capabilitiesArgs) (any, error) {
		return nil, Errorf(CommandNotFound, "Capabilities negotiation is already complete, command ignored")
	})
	Handle(s, "query-version", func(*Call, *struct{}) (any, error) {
		v := cfg.Version
		return map[string]any{
			"qemu":    map[string]int{"major": v.Major, "minor": v.Minor, "micro": v.Micro},
			"package": v.Package,
		}, nil
	})
	Handle(s, "query-commands", func(*Call, *struct{}) (any, error) {
		names := make([]string, 0, len(s.commands))
		for n := range s.commands {
			names = append(names, n)
		}
		sort.Strings(names)
		out := make([]map[string]string, len(names))
		for i, n := range names {
			out[i] = map[string]string{"name": n}
		}
		return out, nil
	})
	return s
}

type capabilitiesArgs struct {
	Enable []string `json:"enable,omitempty"`
}

// Handle registers a command. A is its argument struct (see args.go);
// f returns the value of "return" (nil means {}) or an error (an *Error
// chooses the class). Register before serving.
func Handle[A any](s *Server, name string, f func(c *Call, args *A) (any, error)) {
	s.commands[name] = &command{name: name, run: func(c *Call, raw json.RawMessage) (any, error) {
		var a A
		if err := decodeArgs(raw, &a); err != nil {
			return nil, err
		}
		return f(c, &a)
	}}
}

// Serve accepts clients on l, one at a time, until l is closed or the
// server is.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return net.ErrClosed
	}
	s.listeners[l] = true
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			delete(s.listeners, l)
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.serveConn(c)
	}
}

// Emit sends an event to every client that has negotiated capabilities.
// It never blocks: a client whose queue is full is dropped.
func (s *Server) Emit(event string, data any) {
	now := time.Now()
	msg := struct {
		Event     string `json:"event"`
		Data      any    `json:"data,omitempty"`
		Timestamp struct {
			Seconds      int64 `json:"seconds"`
			Microseconds int64 `json:"microseconds"`
		} `json:"timestamp"`
	}{Event: event, Data: data}
	msg.Timestamp.Seconds = now.Unix()
	msg.Timestamp.Microseconds = int64(now.Nanosecond() / 1000)
	b, err := marshal(msg)
	if err != nil {
		slog.Error("qmp: cannot encode event", "event", event, "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		if ss.negotiated {
			ss.queueEvent(b)
		}
	}
}

// Close stops the listeners, gives each client up to timeout to receive
// what is queued for it (SHUTDOWN, quit's reply), and disconnects it.
func (s *Server) Close(timeout time.Duration) {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	var ss []*session
	for x := range s.sessions {
		ss = append(ss, x)
	}
	s.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for _, x := range ss {
		x.finish(deadline)
	}
	s.serving.Wait()
}

// marshal encodes v as one line ending in CRLF, as QEMU sends it.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := b.Bytes()
	out = append(out[:len(out)-1], '\r', '\n')
	return out, nil
}

// greeting is the first message of every session.
func (s *Server) greeting() []byte {
	v := s.cfg.Version
	g := map[string]any{"QMP": map[string]any{
		"version": map[string]any{
			"qemu":    map[string]int{"major": v.Major, "minor": v.Minor, "micro": v.Micro},
			"package": v.Package,
		},
		"capabilities": []string{},
	}}
	b, _ := marshal(g)
	return b
}

// execute runs one decoded request and returns the reply to send.
func (s *Server) execute(ss *session, frame []byte) (reply []byte, after []func()) {
	id, name, args, err := parseRequest(frame)
	var ret any
	if err == nil {
		ret, after, err = s.dispatch(ss, name, args)
	}
	r := struct {
		ID     json.RawMessage `json:"id,omitempty"`
		Return any             `json:"return,omitempty"`
		Error  *Error          `json:"error,omitempty"`
	}{ID: id}
	if err != nil {
		var qe *Error
		if !errors.As(err, &qe) {
			qe = &Error{Class: GenericError, Desc: err.Error()}
		}
		r.Error = qe
	} else {
		if ret == nil {
			ret = struct{}{}
		}
		r.Return = ret
	}
	b, merr := marshal(r)
	if merr != nil {
		b, _ = marshal(map[string]any{"id": id, "error": Errorf(GenericError, "cannot encode reply: %v", merr)})
	}
	return b, after
}

func (s *Server) dispatch(ss *session, name string, args json.RawMessage) (any, []func(), error) {
	if !ss.negotiated {
		if name != "qmp_capabilities" {
			return nil, nil, Errorf(CommandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'")
		}
		var a capabilitiesArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, nil, err
		}
		for _, c := range a.Enable {
			return nil, nil, Errorf(GenericError, "Capability '%s' not available", c)
		}
		s.mu.Lock()
		ss.negotiated = true
		s.mu.Unlock()
		return nil, nil, nil
	}
	cmd := s.commands[name]
	if cmd == nil {
		return nil, nil, Errorf(CommandNotFound, "The command %s has not been found", name)
	}
	s.execMu.Lock()
	defer s.execMu.Unlock()
	c := &Call{}
	ret, err := cmd.run(c, args)
	if err != nil {
		return nil, nil, err
	}
	return ret, c.after, nil
}

// parseRequest checks the request envelope with QEMU's messages.
func parseRequest(frame []byte) (id json.RawMessage, name string, args json.RawMessage, err error) {
	if !json.Valid(frame) {
		var v any
		derr := json.Unmarshal(frame, &v)
		return nil, "", nil, Errorf(GenericError, "JSON parse error, %v", derr)
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(frame, &m) != nil || m == nil {
		return nil, "", nil, Errorf(GenericError, "QMP input must be a JSON object")
	}
	id = m["id"]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "execute", "arguments", "id":
		default:
			return id, "", nil, Errorf(GenericError, "QMP input member '%s' is unexpected", k)
		}
	}
	exec, ok := m["execute"]
	if !ok {
		return id, "", nil, Errorf(GenericError, "QMP input lacks member 'execute'")
	}
	if json.Unmarshal(exec, &name) != nil || (len(exec) > 0 && exec[0] != '"') {
		return id, "", nil, Errorf(GenericError, "QMP input member 'execute' must be a string")
	}
	args, hasArgs := m["arguments"]
	if hasArgs && (len(bytes.TrimSpace(args)) == 0 || bytes.TrimSpace(args)[0] != '{') {
		return id, "", nil, Errorf(GenericError, "QMP input member 'arguments' must be an object")
	}
	return id, name, args, nil
}
