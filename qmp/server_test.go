package qmp

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testServer serves s on a fresh unix socket and returns its path.
func testServer(t *testing.T, s *Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close(time.Second)
		if err := <-served; err != nil {
			t.Errorf("Serve() = %v; want nil after Close", err)
		}
	})
	return path
}

// client is a test client that reads CRLF-terminated messages.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, path string) *client {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// recv reads one message, requiring the CRLF ending. The deadline only
// bounds a hang: under -race on a busy 2-core host the 64 MiB command of
// TestHugeCommand took over 30 s to be read and refused.
func (c *client) recv() map[string]any {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, line)
	}
	if !strings.HasSuffix(line, "\r\n") {
		c.t.Fatalf("message %q does not end in CRLF", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		c.t.Fatalf("message %q: %v", line, err)
	}
	return m
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// call sends a command and returns the reply.
func (c *client) call(s string) map[string]any {
	c.t.Helper()
	c.sendRaw(s)
	return c.recv()
}

// negotiate reads the greeting and enters command mode.
func (c *client) negotiate() {
	c.t.Helper()
	if g := c.recv(); g["QMP"] == nil {
		c.t.Fatalf("greeting = %v; want a QMP object", g)
	}
	if r := c.call(`{"execute":"qmp_capabilities"}`); r["return"] == nil {
		c.t.Fatalf("qmp_capabilities = %v; want return", r)
	}
}

func errorOf(m map[string]any) (class, desc string) {
	e, _ := m["error"].(map[string]any)
	class, _ = e["class"].(string)
	desc, _ = e["desc"].(string)
	return class, desc
}

type echoArgs struct {
	Text  string `json:"text"`
	Count *int   `json:"count,omitempty"`
	Flag  bool   `json:"flag,omitempty"`
}

// newTestServer has an "echo" command that counts its runs.
func newTestServer(cfg Config) (*Server, *atomic.Int64) {
	s := New(cfg)
	var runs atomic.Int64
	Handle(s, "echo", func(_ *Call, a *echoArgs) (any, error) {
		runs.Add(1)
		if a.Text == "fail" {
			return nil, Errorf(DeviceNotFound, "Device '%s' not found", a.Text)
		}
		return map[string]any{"text": a.Text}, nil
	})
	return s, &runs
}

func TestGreetingAndNegotiation(t *testing.T) {
	s, _ := newTestServer(Config{Version: Version{7, 2, 0, "vmm"}})
	c := dial(t, testServer(t, s))
	g := c.recv()
	b, _ := json.Marshal(g)
	if want := `{"QMP":{"capabilities":[],"version":{"package":"vmm","qemu":{"major":7,"micro":0,"minor":2}}}}`; string(b) != want {
		t.Errorf("greeting = %s; want %s", b, want)
	}
	steps := []struct {
		send, class, desc string
		id                any
	}{
		{`{"execute":"echo","arguments":{"text":"x"},"id":1}`, CommandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'", 1.0},
		{`{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}`, GenericError, "Capability 'oob' not available", nil},
		{`{"execute":"qmp_capabilities","id":"a"}`, "", "", "a"},
		{`{"execute":"qmp_capabilities","id":{"x":[1]}}`, CommandNotFound, "Capabilities negotiation is already complete, command ignored", map[string]any{"x": []any{1.0}}},
		{`{"execute":"nosuch","id":7}`, CommandNotFound, "The command nosuch has not been found", 7.0},
	}
	for _, st := range steps {
		r := c.call(st.send)
		class, desc := errorOf(r)
		if class != st.class || desc != st.desc {
			t.Errorf("%s: error (%q, %q); want (%q, %q)", st.send, class, desc, st.class, st.desc)
		}
		if st.class == "" && r["return"] == nil {
			t.Errorf("%s: reply %v; want a return", st.send, r)
		}
		if got, want := fmt.Sprint(r["id"]), fmt.Sprint(st.id); got != want {
			t.Errorf("%s: id %s; want %s", st.send, got, want)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	s, runs := newTestServer(Config{})
	c := dial(t, testServer(t, s))
	c.negotiate()
	tests := []struct{ send, desc string }{
		{`[1]`, "QMP input must be a JSON object"},
		{`"execute"`, "QMP input must be a JSON object"},
		{`{"execute":"echo","foo":1}`, "QMP input member 'foo' is unexpected"},
		{`{"id":3}`, "QMP input lacks member 'execute'"},
		{`{"execute":5}`, "QMP input member 'execute' must be a string"},
		{`{"execute":"echo","arguments":[1]}`, "QMP input member 'arguments' must be an object"},
		{`{"execute":"echo","arguments":{"text":"x","bogus":1}}`, "Parameter 'bogus' is unexpected"},
		{`{"execute":"echo","arguments":{}}`, "Parameter 'text' is missing"},
		{`{"execute":"echo"}`, "Parameter 'text' is missing"},
		{`{"execute":"echo","arguments":{"text":1}}`, "Invalid parameter type for 'text', expected: string"},
		{`{"execute":"echo","arguments":{"text":"x","count":"y"}}`, "Invalid parameter type for 'count', expected: integer"},
		{`{"execute":"echo","arguments":{"text":"x","flag":"on"}}`, "Invalid parameter type for 'flag', expected: boolean"},
		{`garbage `, "JSON parse error"},
		{`}`, "JSON parse error"},
		{`{"execute":"echo",,}`, "JSON parse error"},
		{"{\"execute\":\"echo\"\xff", "JSON parse error, stray byte"},
	}
	for _, tt := range tests {
		class, desc := errorOf(c.call(tt.send))
		if class != GenericError || !strings.HasPrefix(desc, tt.desc) {
			t.Errorf("%q: error (%q, %q); want (GenericError, %q…)", tt.send, class, desc, tt.desc)
		}
	}
	if n := runs.Load(); n != 0 {
		t.Errorf("echo ran %d times; want 0 (every request was refused)", n)
	}
	// The session is still usable, and a handler's class goes through.
	if r := c.call(`{"execute":"echo","arguments":{"text":"ok","count":3,"flag":true}}`); fmt.Sprint(r["return"]) != "map[text:ok]" {
		t.Errorf("echo after errors = %v; want return {text: ok}", r)
	}
	if class, _ := errorOf(c.call(`{"execute":"echo","arguments":{"text":"fail"}}`)); class != DeviceNotFound {
		t.Errorf("handler error class = %q; want DeviceNotFound", class)
	}
}

// TestStream: commands are JSON values in a stream, not lines: several
// in one write with no separator, one split into single bytes.
func TestStream(t *testing.T) {
	s, _ := newTestServer(Config{})
	c := dial(t, testServer(t, s))
	c.negotiate()
	c.sendRaw(`{"execute":"echo","arguments":{"text":"a"},"id":1}{"execute":"echo","arguments":{"text":"b\"}{"},"id":2}` +
		"\n\n  {\"execute\":\r\n\"echo\",\n\"arguments\":{\"text\":\"c\"},\"id\":3}")
	for i, want := range []string{"a", "b\"}{", "c"} {
		r := c.recv()
		ret, _ := r["return"].(map[string]any)
		if ret["text"] != want || r["id"] != float64(i+1) {
			t.Errorf("reply %d = %v; want text %q id %d", i+1, r, want, i+1)
		}
	}
	cmd := `{"execute":"echo","arguments":{"text":"slow"}}`
	for i := range len(cmd) {
		c.sendRaw(cmd[i : i+1])
	}
	if r := c.recv(); fmt.Sprint(r["return"]) != "map[text:slow]" {
		t.Errorf("byte-by-byte command = %v; want return {text: slow}", r)
	}
}

// TestHugeCommand: a 64 MiB line is refused without holding it in
// memory, and the session goes on.
func TestHugeCommand(t *testing.T) {
	s, runs := newTestServer(Config{MaxCommand: 1 << 20})
	c := dial(t, testServer(t, s))
	c.negotiate()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sent := make(chan error, 1)
	go func() {
		chunk := []byte(strings.Repeat("A", 64<<10))
		_, err := io.WriteString(c.conn, `{"execute":"echo","arguments":{"text":"`)
		for i := 0; i < 1024 && err == nil; i++ {
			_, err = c.conn.Write(chunk)
		}
		if err == nil {
			_, err = io.WriteString(c.conn, "\"}}\n")
		}
		sent <- err
	}()
	class, desc := errorOf(c.recv())
	if err := <-sent; err != nil {
		t.Fatalf("writing 64 MiB: %v", err)
	}
	runtime.ReadMemStats(&after)
	if class != GenericError || !strings.Contains(desc, "longer than 1048576 bytes") {
		t.Errorf("64 MiB command: error (%q, %q); want GenericError naming the limit", class, desc)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("allocated %d MiB while refusing a 64 MiB command; want under 16", grew>>20)
	}
	if r := c.call(`{"execute":"echo","arguments":{"text":"after"}}`); fmt.Sprint(r["return"]) != "map[text:after]" {
		t.Errorf("command after the huge one = %v", r)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("echo ran %d times; want 1", n)
	}
	// Deep nesting is refused the same way.
	if class, _ := errorOf(c.call(strings.Repeat("[", 2000) + strings.Repeat("]", 2000))); class != GenericError {
		t.Errorf("2000-deep nesting: class %q; want GenericError", class)
	}
}

// TestEventsInOrder: events interleave with replies in production order,
// each with a timestamp, and only after negotiation.
func TestEventsInOrder(t *testing.T) {
	s, _ := newTestServer(Config{})
	Handle(s, "burst", func(_ *Call, _ *struct{}) (any, error) {
		for i := range 200 {
			s.Emit("TICK", map[string]int{"n": i})
		}
		return nil, nil
	})
	c := dial(t, testServer(t, s))
	c.recv()
	s.Emit("EARLY", nil) // before negotiation: not sent
	c.call(`{"execute":"qmp_capabilities"}`)
	c.sendRaw(`{"execute":"burst"}`)
	start := time.Now().Unix()
	for i := range 200 {
		m := c.recv()
		data, _ := m["data"].(map[string]any)
		ts, _ := m["timestamp"].(map[string]any)
		if m["event"] != "TICK" || data["n"] != float64(i) {
			t.Fatalf("message %d = %v; want TICK n=%d", i, m, i)
		}
		if sec, _ := ts["seconds"].(float64); int64(sec) < start-1 || ts["microseconds"] == nil {
			t.Fatalf("event timestamp = %v; want seconds near %d and microseconds", ts, start)
		}
	}
	if r := c.recv(); r["return"] == nil {
		t.Errorf("after the events: %v; want burst's return", r)
	}
	s.Emit("BARE", nil)
	if m := c.recv(); m["event"] != "BARE" || m["data"] != nil {
		t.Errorf("event without data = %v; want no data member", m)
	}
}

// TestStalledClientDropped: a client that stops reading is dropped when
// its queue fills; Emit never waits, and the next client is served.
func TestStalledClientDropped(t *testing.T) {
	s, _ := newTestServer(Config{QueueLen: 16})
	path := testServer(t, s)
	stalled := dial(t, path)
	stalled.negotiate()
	payload := strings.Repeat("x", 4096)
	start := time.Now()
	for i := 0; i < 5000; i++ {
		s.Emit("BIG", map[string]string{"p": payload})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("5000 events to a stalled client took %v; Emit must not wait", d)
	}
	// The stalled client's connection ends after what was buffered.
	stalled.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, stalled.r)
	if err != nil {
		t.Errorf("reading the dropped client's stream: %v after %d bytes; want EOF", err, n)
	}
	if n >= 5000*4096 {
		t.Errorf("dropped client got %d bytes; want less than all 5000 events", n)
	}
	next := dial(t, path)
	next.negotiate()
}

// TestOneClientAtATime: a second client waits in the backlog and gets
// its greeting when the first leaves.
func TestOneClientAtATime(t *testing.T) {
	s, _ := newTestServer(Config{})
	path := testServer(t, s)
	first := dial(t, path)
	first.negotiate()
	second := dial(t, path)
	second.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := second.r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second client read: %v; want a timeout (it waits in the backlog)", err)
	}
	second.sendRaw(`{"execute":"qmp_capabilities"}`) // kept in its socket meanwhile
	first.conn.Close()
	if g := second.recv(); g["QMP"] == nil {
		t.Fatalf("second client's first message = %v; want the greeting", g)
	}
	if r := second.recv(); r["return"] == nil {
		t.Errorf("second client's early command = %v; want return", r)
	}
}

// TestConnectCycles: clients that come and go, some mid-reply, leave no
// file descriptors behind and do not stop the server.
func TestConnectCycles(t *testing.T) {
	s, _ := newTestServer(Config{})
	Handle(s, "big", func(_ *Call, _ *struct{}) (any, error) {
		return strings.Repeat("y", 256<<10), nil
	})
	path := testServer(t, s)
	warm := dial(t, path)
	warm.negotiate()
	warm.conn.Close()
	fdsBefore := countFDs(t)
	for i := 0; i < 1000; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		switch i % 3 {
		case 1:
			io.WriteString(c, `{"execute":"qmp_capabilities"}{"execute":"big"}`)
		case 2:
			io.WriteString(c, `{"execute":"qmp_capa`)
		}
		c.Close()
	}
	last := dial(t, path)
	last.negotiate()
	if r := last.call(`{"execute":"echo","arguments":{"text":"alive"}}`); r["return"] == nil {
		t.Errorf("after 1000 cycles: %v", r)
	}
	if got := countFDs(t); got > fdsBefore+3 {
		t.Errorf("open fds: %d after 1000 cycles, %d before; want no growth", got, fdsBefore)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestCloseFlushes: what is queued when the server closes (SHUTDOWN,
// quit's reply) reaches the client before it is disconnected.
func TestCloseFlushes(t *testing.T) {
	s, _ := newTestServer(Config{})
	quit := make(chan struct{})
	Handle(s, "quit", func(c *Call, _ *struct{}) (any, error) {
		c.After(func() { close(quit) })
		return nil, nil
	})
	c := dial(t, testServer(t, s))
	c.negotiate()
	c.sendRaw(`{"execute":"quit"}`)
	<-quit
	s.Emit("SHUTDOWN", map[string]any{"guest": false, "reason": "host-qmp-quit"})
	s.Close(2 * time.Second)
	if r := c.recv(); r["return"] == nil {
		t.Errorf("first message after quit = %v; want its return", r)
	}
	if m := c.recv(); m["event"] != "SHUTDOWN" {
		t.Errorf("second message = %v; want SHUTDOWN", m)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Errorf("after Close: %v; want EOF", err)
	}
}

func TestQueryCommandsAndVersion(t *testing.T) {
	s, _ := newTestServer(Config{Version: Version{7, 2, 0, "vmm test"}})
	c := dial(t, testServer(t, s))
	c.negotiate()
	r := c.call(`{"execute":"query-commands"}`)
	b, _ := json.Marshal(r["return"])
	if want := `[{"name":"echo"},{"name":"qmp_capabilities"},{"name":"query-commands"},{"name":"query-version"}]`; string(b) != want {
		t.Errorf("query-commands = %s; want %s", b, want)
	}
	r = c.call(`{"execute":"query-version","arguments":{}}`)
	b, _ = json.Marshal(r["return"])
	if want := `{"package":"vmm test","qemu":{"major":7,"micro":0,"minor":2}}`; string(b) != want {
		t.Errorf("query-version = %s; want %s", b, want)
	}
}

// TestPipeliningClientDropped: a client that sends commands and never
// reads a reply is dropped once its queue is full, so the clients
// waiting behind it are served.
func TestPipeliningClientDropped(t *testing.T) {
	s, _ := newTestServer(Config{QueueLen: 64})
	path := testServer(t, s)
	greedy := dial(t, path)
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(greedy.conn, `{"execute":"qmp_capabilities"}`+
			strings.Repeat(`{"execute":"echo","arguments":{"text":"`+strings.Repeat("z", 4000)+`"}}`, 20000))
		wrote <- err
	}()
	next := dial(t, path)
	next.negotiate() // waits until the greedy client is gone
	if err := <-wrote; err == nil {
		t.Errorf("the greedy client wrote 80 MB with nobody reading; want its connection closed")
	}
}
