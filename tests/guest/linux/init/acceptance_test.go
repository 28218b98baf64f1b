//go:build linux && amd64

package main

import "testing"

func TestSelectCases(t *testing.T) {
	all, err := selectCases("")
	if err != nil || len(all) != len(acceptCases) {
		t.Errorf(`selectCases("") = %d cases, %v; want %d, nil`, len(all), err, len(acceptCases))
	}
	got, err := selectCases("sigio,open_close")
	if err != nil || len(got) != 2 || got[0].name != "sigio" || got[1].name != "open_close" {
		t.Errorf(`selectCases("sigio,open_close") = %v, %v; want sigio, open_close`, got, err)
	}
	if _, err := selectCases("open_close,bogus"); err == nil {
		t.Errorf(`selectCases("open_close,bogus") = nil error; want an error`)
	}
}

func TestAcceptCaseNames(t *testing.T) {
	seen := map[string]bool{}
	for _, ac := range acceptCases {
		if seen[ac.name] {
			t.Errorf("case %q listed twice; want each once", ac.name)
		}
		seen[ac.name] = true
	}
}

func TestPollString(t *testing.T) {
	for _, tc := range []struct {
		ev   int16
		want string
	}{{0, "0"}, {0x1, "IN"}, {0x1 | 0x4, "IN|OUT"}, {0x1 | 0x10, "IN|HUP"}} {
		if got := pollString(tc.ev); got != tc.want {
			t.Errorf("pollString(%#x) = %q; want %q", tc.ev, got, tc.want)
		}
	}
}
