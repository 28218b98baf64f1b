package main

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"vmm/chardev"
)

// chardevSpec is a parsed -chardev: its backend, not yet started.
type chardevSpec struct {
	id      string
	backend chardev.Backend
	stdio   bool
	serial  bool // COM1's backend (-serial chardev:ID)
	// waitsFor names what a socket server with wait=on waits for at
	// start-up ("unix:PATH", "tcp:HOST:PORT"); empty otherwise.
	waitsFor string
}

// parseChardev reads `-chardev BACKEND,id=ID,…` with QEMU's names.
func parseChardev(s string) (*chardevSpec, error) {
	o, err := parseQemuOpts("-chardev", s)
	if err != nil {
		return nil, err
	}
	id, err := o.required("id")
	if err != nil {
		return nil, err
	}
	c := &chardevSpec{id: id}
	if _, mux := o.props["mux"]; mux && o.driver != "stdio" {
		return nil, fmt.Errorf("-chardev %s: mux= is supported on stdio only (there, the Ctrl-A keys are always on); a chardev has one front end here", o.driver)
	}
	switch o.driver {
	case "null":
		c.backend = chardev.NewNull(id)
	case "stdio":
		signal, err := o.boolean("signal", true)
		if err != nil {
			return nil, err
		}
		// QEMU's mux=on adds the Ctrl-A keys; here stdio always has them.
		if _, err := o.boolean("mux", true); err != nil {
			return nil, err
		}
		c.backend, c.stdio = chardev.NewStdio(id, signal), true
	case "file":
		path, err := o.required("path")
		if err != nil {
			return nil, err
		}
		in, _ := o.str("input-path")
		appendMode, err := o.boolean("append", false)
		if err != nil {
			return nil, err
		}
		c.backend = chardev.NewFile(id, path, in, appendMode)
	case "socket":
		cfg, err := socketConfig(o, id)
		if err != nil {
			return nil, err
		}
		c.backend = chardev.NewSocket(cfg)
		if cfg.Wait {
			c.waitsFor = "unix:" + cfg.Path
			if cfg.Path == "" {
				c.waitsFor = "tcp:" + net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
			}
		}
	case "pipe":
		path, err := o.required("path")
		if err != nil {
			return nil, err
		}
		c.backend = chardev.NewPipe(id, path)
	case "pty":
		c.backend = chardev.NewPty(id)
	case "ringbuf", "memory":
		size, err := o.size("size", 64<<10)
		if err != nil {
			return nil, err
		}
		if size == 0 || size&(size-1) != 0 || size > 1<<30 {
			return nil, fmt.Errorf("-chardev ringbuf: size=%d must be a power of two from 1 to 1G, e.g. size=64K", size)
		}
		c.backend = chardev.NewRingbuf(id, int(size))
	default:
		return nil, fmt.Errorf("-chardev %s: unknown backend (want socket, pipe, pty, file, ringbuf, stdio or null)", o.driver)
	}
	return c, o.unused()
}

// socketConfig reads a socket chardev: path= (unix) or host=,port= (tcp).
func socketConfig(o *qemuOpts, id string) (chardev.SocketConfig, error) {
	cfg := chardev.SocketConfig{ID: id}
	var err error
	path, hasPath := o.str("path")
	host, _ := o.str("host")
	port, hasPort := o.str("port")
	switch {
	case hasPath && hasPort:
		return cfg, fmt.Errorf("-chardev socket: give path= or host=,port=, not both")
	case hasPath && path == "":
		return cfg, fmt.Errorf("-chardev socket: path= is empty (give the unix socket's file name, e.g. path=/tmp/vm.sock)")
	case hasPath:
		cfg.Path = path
	case hasPort:
		if cfg.Port, err = strconv.Atoi(port); err != nil || cfg.Port < 0 || cfg.Port > 65535 {
			return cfg, fmt.Errorf("-chardev socket: port=%s is not a port number", port)
		}
		cfg.Host = host
	default:
		return cfg, fmt.Errorf("-chardev socket: path= (unix) or host=,port= (tcp) is required")
	}
	if cfg.Server, err = o.boolean("server", false); err != nil {
		return cfg, err
	}
	if cfg.Wait, err = o.boolean("wait", cfg.Server); err != nil {
		return cfg, err
	}
	cfg.Wait = cfg.Wait && cfg.Server
	if cfg.NoDelay, err = o.boolean("nodelay", false); err != nil {
		return cfg, err
	}
	secs, err := o.integer("reconnect", 0)
	if err != nil {
		return cfg, err
	}
	if secs < 0 || (secs > 0 && cfg.Server) {
		return cfg, fmt.Errorf("-chardev socket: reconnect=%d: only for a client (server=off), in seconds >= 0", secs)
	}
	cfg.Reconnect = time.Duration(secs) * time.Second
	return cfg, nil
}
