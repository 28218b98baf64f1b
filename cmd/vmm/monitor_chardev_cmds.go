package main

// QMP chardev commands: query-chardev, chardev-add, chardev-remove,
// ringbuf-read and ringbuf-write, with QEMU's argument shapes (the 7.2
// schema: ChardevBackend and SocketAddressLegacy are {"type", "data"}).

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"vmm/chardev"
	"vmm/qmp"
)

func (mon *monitor) queryChardev(*qmp.Call, *noArgs) (any, error) {
	mon.mu.Lock()
	ids := make([]string, 0, len(mon.chardevs))
	for id := range mon.chardevs {
		ids = append(ids, id)
	}
	hs := mon.chardevs
	mon.mu.Unlock()
	sort.Strings(ids)
	open := mon.frontendOpen()
	out := []map[string]any{}
	for _, id := range ids {
		h := hs[id]
		out = append(out, map[string]any{"label": id, "filename": h.filename(),
			"frontend-open": open[id] || h.ownerName() == "monitor"})
	}
	return out, nil
}

// frontendOpen is, by chardev id, whether the guest has its port open.
func (mon *monitor) frontendOpen() map[string]bool {
	open := map[string]bool{}
	for _, b := range mon.buses {
		for _, st := range b.dev.Stats() {
			open[st.Chardev] = st.GuestOpen
		}
	}
	return open
}

type chardevAddArgs struct {
	ID      string     `json:"id"`
	Backend typedUnion `json:"backend"`
}

// typedUnion is QAPI's legacy union: {"type": T, "data": {…}}.
type typedUnion struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// chardevCommon are the members every QEMU chardev backend accepts;
// vmm has no chardev logging, so they are refused when set.
type chardevCommon struct {
	Logfile   string `json:"logfile,omitempty"`
	Logappend *bool  `json:"logappend,omitempty"`
}

func (c chardevCommon) check() error {
	if c.Logfile != "" || c.Logappend != nil {
		return fmt.Errorf("logfile and logappend are not supported by vmm")
	}
	return nil
}

type chardevSocketArgs struct {
	Addr      typedUnion `json:"addr"`
	Server    *bool      `json:"server,omitempty"`
	Wait      *bool      `json:"wait,omitempty"`
	Nodelay   *bool      `json:"nodelay,omitempty"`
	Reconnect *int64     `json:"reconnect,omitempty"`
	chardevCommon
}

type unixAddrArgs struct {
	Path string `json:"path"`
}

type inetAddrArgs struct {
	Host string `json:"host"`
	Port string `json:"port"`
}

type chardevFileArgs struct {
	Out    string `json:"out"`
	In     string `json:"in,omitempty"`
	Append *bool  `json:"append,omitempty"`
	chardevCommon
}

type chardevPipeArgs struct {
	Device string `json:"device"`
	chardevCommon
}

type chardevRingbufArgs struct {
	Size *int64 `json:"size,omitempty"`
	chardevCommon
}

type chardevEmptyArgs struct {
	chardevCommon
}

// chardevAdd creates and opens a chardev that a device_add can then
// use. A pty's path is returned, as QEMU does.
func (mon *monitor) chardevAdd(_ *qmp.Call, a *chardevAddArgs) (any, error) {
	if err := checkID("chardev-add", a.ID); err != nil {
		return nil, err
	}
	mon.mu.Lock()
	_, dup := mon.chardevs[a.ID]
	mon.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("Chardev with id '%s' already exists", a.ID)
	}
	b, err := mon.newBackend(a.ID, a.Backend)
	if err != nil {
		return nil, err
	}
	h := newHostChardev(b)
	// Started here, not on the event loop: a client socket's name lookup
	// and connect may take a while, and the loop must not wait for them
	// (the guest's console output does). With no front end yet, a
	// connection made during Start is only recorded.
	if err := h.Start(mon.loop, nil); err != nil {
		b.Close()
		return nil, fmt.Errorf("Failed to add chardev '%s': %v", a.ID, err)
	}
	mon.mu.Lock()
	mon.chardevs[a.ID] = h
	mon.mu.Unlock()
	if p, ok := b.(*chardev.Pty); ok {
		return map[string]string{"pty": p.Path()}, nil
	}
	return nil, nil
}

// newBackend builds (does not start) a backend from QMP's description.
func (mon *monitor) newBackend(id string, u typedUnion) (chardev.Backend, error) {
	if len(u.Data) == 0 {
		u.Data = json.RawMessage("{}")
	}
	fail := func(err error) (chardev.Backend, error) {
		return nil, fmt.Errorf("Failed to add chardev '%s': %v", id, err)
	}
	switch u.Type {
	case "socket":
		var s chardevSocketArgs
		if err := qmp.DecodeArgs(u.Data, &s); err != nil {
			return nil, err
		}
		if err := s.check(); err != nil {
			return fail(err)
		}
		cfg := chardev.SocketConfig{ID: id, Server: s.Server == nil || *s.Server}
		cfg.Wait = s.Wait != nil && *s.Wait
		cfg.NoDelay = s.Nodelay != nil && *s.Nodelay
		if cfg.Wait {
			return fail(fmt.Errorf("wait=true would stop the monitor until a client connects; use wait=false"))
		}
		if s.Reconnect != nil {
			if *s.Reconnect < 0 || (*s.Reconnect > 0 && cfg.Server) {
				return fail(fmt.Errorf("'reconnect' option is only for a client socket, in seconds >= 0"))
			}
			cfg.Reconnect = time.Duration(*s.Reconnect) * time.Second
		}
		switch s.Addr.Type {
		case "unix":
			var a unixAddrArgs
			if err := qmp.DecodeArgs(s.Addr.Data, &a); err != nil {
				return nil, err
			}
			if a.Path == "" {
				return fail(fmt.Errorf("the unix socket path is empty"))
			}
			cfg.Path = a.Path
		case "inet":
			var a inetAddrArgs
			if err := qmp.DecodeArgs(s.Addr.Data, &a); err != nil {
				return nil, err
			}
			port, err := strconv.Atoi(a.Port)
			if err != nil || port < 0 || port > 65535 {
				return fail(fmt.Errorf("port '%s' is not a port number", a.Port))
			}
			cfg.Host, cfg.Port = a.Host, port
		default:
			return nil, fmt.Errorf("Parameter 'addr.type' does not accept value '%s' (vmm has unix and inet)", s.Addr.Type)
		}
		return chardev.NewSocket(cfg), nil
	case "file":
		var f chardevFileArgs
		if err := qmp.DecodeArgs(u.Data, &f); err != nil {
			return nil, err
		}
		if err := f.check(); err != nil {
			return fail(err)
		}
		return chardev.NewFile(id, f.Out, f.In, f.Append != nil && *f.Append), nil
	case "pipe":
		var p chardevPipeArgs
		if err := qmp.DecodeArgs(u.Data, &p); err != nil {
			return nil, err
		}
		if err := p.check(); err != nil {
			return fail(err)
		}
		return chardev.NewPipe(id, p.Device), nil
	case "ringbuf", "memory":
		var r chardevRingbufArgs
		if err := qmp.DecodeArgs(u.Data, &r); err != nil {
			return nil, err
		}
		if err := r.check(); err != nil {
			return fail(err)
		}
		size := int64(64 << 10)
		if r.Size != nil {
			size = *r.Size
		}
		if size <= 0 || size&(size-1) != 0 || size > 1<<30 {
			return fail(fmt.Errorf("size of ringbuf chardev must be power of two"))
		}
		return chardev.NewRingbuf(id, int(size)), nil
	case "pty", "null":
		var e chardevEmptyArgs
		if err := qmp.DecodeArgs(u.Data, &e); err != nil {
			return nil, err
		}
		if err := e.check(); err != nil {
			return fail(err)
		}
		if u.Type == "pty" {
			return chardev.NewPty(id), nil
		}
		return chardev.NewNull(id), nil
	}
	return nil, fmt.Errorf("Parameter 'type' does not accept value '%s' (vmm has socket, file, pipe, pty, null and ringbuf)", u.Type)
}

type chardevRemoveArgs struct {
	ID string `json:"id"`
}

// chardevRemove closes a chardev nothing uses.
func (mon *monitor) chardevRemove(_ *qmp.Call, a *chardevRemoveArgs) (any, error) {
	mon.mu.Lock()
	h := mon.chardevs[a.ID]
	mon.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("Chardev '%s' not found", a.ID)
	}
	if h.ownerName() != "" {
		return nil, fmt.Errorf("Chardev '%s' is busy", a.ID)
	}
	mon.onLoop(func() error { return h.Close() })
	mon.mu.Lock()
	delete(mon.chardevs, a.ID)
	mon.mu.Unlock()
	return nil, nil
}

type ringbufReadArgs struct {
	Device string `json:"device"`
	Size   int64  `json:"size"`
	Format string `json:"format,omitempty"`
}

type ringbufWriteArgs struct {
	Device string `json:"device"`
	Data   string `json:"data"`
	Format string `json:"format,omitempty"`
}

// ringbuf finds a ringbuf chardev, with QEMU's errors.
func (mon *monitor) ringbuf(id string) (*chardev.Ringbuf, error) {
	mon.mu.Lock()
	h := mon.chardevs[id]
	mon.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("Device '%s' not found", id)
	}
	r, ok := h.backend.(*chardev.Ringbuf)
	if !ok {
		return nil, fmt.Errorf("%s is not a ringbuf device", id)
	}
	return r, nil
}

// ringbufRead takes up to size of the oldest bytes out of the ring.
func (mon *monitor) ringbufRead(_ *qmp.Call, a *ringbufReadArgs) (any, error) {
	r, err := mon.ringbuf(a.Device)
	if err != nil {
		return nil, err
	}
	if a.Size < 0 {
		return nil, fmt.Errorf("size must be greater than zero")
	}
	if err := checkFormat(a.Format); err != nil {
		return nil, err
	}
	b := r.Read(int(min(a.Size, 1<<30)))
	if a.Format == "base64" {
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return string(b), nil // invalid UTF-8 goes out as U+FFFD, as in QEMU
}

// ringbufWrite appends to the ring, as the guest's output would be.
func (mon *monitor) ringbufWrite(_ *qmp.Call, a *ringbufWriteArgs) (any, error) {
	r, err := mon.ringbuf(a.Device)
	if err != nil {
		return nil, err
	}
	if err := checkFormat(a.Format); err != nil {
		return nil, err
	}
	data := []byte(a.Data)
	if a.Format == "base64" {
		if data, err = base64.StdEncoding.DecodeString(a.Data); err != nil {
			return nil, fmt.Errorf("invalid base64 data: %v", err)
		}
	}
	r.Write(data)
	return nil, nil
}

func checkFormat(f string) error {
	if f != "" && f != "utf8" && f != "base64" {
		return fmt.Errorf("Parameter 'format' does not accept value '%s'", f)
	}
	return nil
}
