package main

import (
	"fmt"
	"strings"
)

// serialID is the chardev id -serial's own backend gets (QEMU's too).
const serialID = "serial0"

// parseSerial reads QEMU's -serial forms. It returns the chardev behind
// COM1, or ref for `chardev:ID` (resolved once every -chardev is read);
// `none` returns neither.
func parseSerial(s string) (spec *chardevSpec, ref string, err error) {
	if id, ok := strings.CutPrefix(s, "chardev:"); ok {
		if id == "" {
			return nil, "", fmt.Errorf("-serial chardev: needs an id (-serial chardev:ID with -chardev …,id=ID)")
		}
		return nil, id, nil
	}
	v := strings.TrimPrefix(s, "mon:") // the escape keys are always on for stdio; there is no HMP monitor
	esc := func(p string) string { return strings.ReplaceAll(p, ",", ",,") }
	var cd string
	switch {
	case s == "none":
		return nil, "", nil
	case v == "stdio":
		// Ctrl-C goes to the guest, as with QEMU's mon:stdio (a terminal
		// user wants ^C for the guest's shell); Ctrl-A x quits.
		cd = "stdio,signal=off"
	case v == "null", v == "pty":
		cd = v
	case strings.HasPrefix(v, "file:"):
		cd = "file,path=" + esc(strings.TrimPrefix(v, "file:"))
	case strings.HasPrefix(v, "pipe:"):
		cd = "pipe,path=" + esc(strings.TrimPrefix(v, "pipe:"))
	case strings.HasPrefix(v, "unix:"):
		path, opts, _ := strings.Cut(strings.TrimPrefix(v, "unix:"), ",")
		cd = "socket,path=" + path
		if opts != "" {
			cd += "," + opts
		}
	case strings.HasPrefix(v, "tcp:"):
		addr, opts, _ := strings.Cut(strings.TrimPrefix(v, "tcp:"), ",")
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			return nil, "", fmt.Errorf("-serial %s: want tcp:HOST:PORT[,server=on|off][,wait=on|off]", s)
		}
		cd = "socket,host=" + strings.Trim(addr[:i], "[]") + ",port=" + addr[i+1:]
		if opts != "" {
			cd += "," + opts
		}
	default:
		return nil, "", fmt.Errorf("-serial %s: unknown or unsupported backend (want stdio, mon:stdio, null, none, file:PATH, pipe:PATH, pty, unix:PATH[,server][,nowait], tcp:HOST:PORT[,server][,nowait] or chardev:ID; telnet, udp, vc and host devices are not supported)", s)
	}
	spec, err = parseChardev(cd + ",id=" + serialID)
	if err != nil {
		// Name what the user typed, not the -chardev it became.
		return nil, "", fmt.Errorf("-serial %s: %s", s, strings.TrimPrefix(err.Error(), "-chardev "))
	}
	return spec, "", nil
}
