package main

import (
	"strings"
	"testing"

	"vmm/qmp"
)

// TestSetCapabilitiesArgs: migrate-set-capabilities's arguments are
// checked, with QEMU's words, before any takes effect.
func TestSetCapabilitiesArgs(t *testing.T) {
	for _, c := range []struct{ args, err string }{
		{`{"capabilities":[{"capability":"events","state":true}]}`, ""},
		{`{"capabilities":[{"capability":"xbzrle","state":false},{"capability":"events","state":false}]}`, ""},
		{`{"capabilities":[]}`, ""},
		{`{}`, "Parameter 'capabilities' is missing"},
		{`{"capabilities":[{"capability":"events"}]}`, "Parameter 'capabilities[0].state' is missing"},
		{`{"capabilities":[{"capability":"events","state":true},{"state":true}]}`, "Parameter 'capabilities[1].capability' is missing"},
		{`{"capabilities":[{"capability":"bogus","state":false}]}`, "Parameter 'capability' does not accept value 'bogus'"},
		{`{"capabilities":[{"capability":"events","state":true},{"capability":"postcopy-ram","state":true}]}`, "'postcopy-ram' is not supported"},
		{`{"capabilities":[{"capability":"events","state":"yes"}]}`, "Invalid parameter type"},
	} {
		var a setCapabilitiesArgs
		err := qmp.DecodeArgs([]byte(c.args), &a)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v; want accepted", c.args, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v; want an error with %q", c.args, err, c.err)
		}
	}
}
