package main

import (
	"fmt"
	"strings"
)

// qemuOpts is one QEMU-style option value: `driver,key=value,flag,…`.
type qemuOpts struct {
	option string // "-chardev", "-device": for errors
	driver string
	props  map[string]string
	order  []string // keys as given, for error messages
	used   map[string]bool
}

// parseQemuOpts splits a value; the first element is the driver (or
// backend), the rest are key=value pairs. A bare key means key=on, and
// QEMU's old `nowait` means wait=off. ",," is a literal comma.
func parseQemuOpts(option, s string) (*qemuOpts, error) {
	parts := splitCommas(s)
	if len(parts) == 0 || parts[0] == "" || strings.Contains(parts[0], "=") {
		return nil, fmt.Errorf("%s %s: the first item must name the %s", option, s, strings.TrimPrefix(option, "-"))
	}
	o := &qemuOpts{option: option, driver: parts[0], props: map[string]string{}, used: map[string]bool{}}
	for _, p := range parts[1:] {
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			k, v = p, "on"
			if p == "nowait" {
				k, v = "wait", "off"
			}
		}
		if _, dup := o.props[k]; dup {
			return nil, fmt.Errorf("%s %s: %s= given twice", option, o.driver, k)
		}
		o.props[k] = v
		o.order = append(o.order, k)
	}
	return o, nil
}

func splitCommas(s string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			if i+1 < len(s) && s[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(parts, cur.String())
}

// str returns a property and marks it used.
func (o *qemuOpts) str(k string) (string, bool) {
	v, ok := o.props[k]
	o.used[k] = true
	return v, ok
}

// required returns a property that must be present.
func (o *qemuOpts) required(k string) (string, error) {
	v, ok := o.str(k)
	if !ok {
		return "", fmt.Errorf("%s %s: %s= is required", o.option, o.driver, k)
	}
	if v == "" {
		return "", fmt.Errorf("%s %s: %s= is empty (give it a value)", o.option, o.driver, k)
	}
	return v, nil
}

// boolean reads on/off (also yes/no, true/false), with a default.
func (o *qemuOpts) boolean(k string, def bool) (bool, error) {
	v, ok := o.str(k)
	if !ok {
		return def, nil
	}
	switch v {
	case "on", "yes", "true":
		return true, nil
	case "off", "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%s %s: %s=%s: want on or off", o.option, o.driver, k, v)
}

// integer reads a decimal property, with a default.
func (o *qemuOpts) integer(k string, def int) (int, error) {
	v, ok := o.str(k)
	if !ok {
		return def, nil
	}
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil || fmt.Sprint(n) != v {
		return 0, fmt.Errorf("%s %s: %s=%s: not a number", o.option, o.driver, k, v)
	}
	return n, nil
}

// unused reports the first property nobody asked for.
func (o *qemuOpts) unused() error {
	for _, k := range o.order {
		if !o.used[k] {
			return fmt.Errorf("%s %s: unknown property %q", o.option, o.driver, k)
		}
	}
	return nil
}

// size reads a byte count with an optional K/M/G suffix, with a default.
func (o *qemuOpts) size(k string, def uint64) (uint64, error) {
	v, ok := o.str(k)
	if !ok {
		return def, nil
	}
	n, err := parseSize(v, 1)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %s=%s: %w", o.option, o.driver, k, v, err)
	}
	return n, nil
}
