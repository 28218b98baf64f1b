package soak

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestFairness(t *testing.T) {
	ps := []PortSpec{{Index: 0, Name: "p0"}, {Index: 1, Name: "p1"}}
	f := Fairness{Ratio: 2, GraceS: 0, MinWindows: 2}
	iv := []Interval{{Port: 1, Kind: Pause, Start: 4, End: 7.5}} // p1 blocked in windows 4..7
	mk := func(calm, cont int64) [][]int64 {
		w := make([][]int64, 2)
		for i := 0; i < 10; i++ {
			v := calm
			if i >= 4 && i <= 7 {
				v = cont
			}
			w[0] = append(w[0], v)
			w[1] = append(w[1], calm)
		}
		return w
	}
	res, vs := f.judge(ps, "guest→host", mk(100<<20, 80<<20), iv)
	if len(vs) != 0 || !res[0].Judged || res[0].CalmWindows != 6 || res[0].ContendedWindows != 4 {
		t.Fatalf("fair case: %+v %v; want p0 judged on 6 calm and 4 contended windows, no violation", res, vs)
	}
	if res[1].Judged {
		t.Errorf("p1 judged with no contended windows: %+v", res[1])
	}
	_, vs = f.judge(ps, "guest→host", mk(100<<20, 10<<20), iv)
	if len(vs) != 1 || vs[0].Port != "p0" || vs[0].T != 4 {
		t.Errorf("unfair case: %v; want one violation on p0 at t=4", vs)
	}
}

func TestFlatness(t *testing.T) {
	f := Flatness{WarmupS: 2, BaselineS: 2, RSSSlackKiB: 1000, FDSlack: 2}
	var s []ProcSample
	for i := 0; i < 10; i++ {
		s = append(s, ProcSample{T: float64(i), RSSKiB: 5000 + int64(i%2)*100, FDs: 20})
	}
	if r, vs := f.judge(s); len(vs) != 0 || !r.Judged || r.BaseRSSKiB != 5100 {
		t.Fatalf("flat samples: %+v %v; want judged, baseline 5100 KiB, no violations", r, vs)
	}
	s[7].RSSKiB, s[8].FDs = 7000, 23
	r, vs := f.judge(s)
	if len(vs) != 2 || vs[0].T != 7 || vs[1].T != 8 || r.RSSGrowthKiB != 1900 || r.FDGrowth != 3 {
		t.Errorf("growing samples: %+v %v; want RSS at t=7 and fds at t=8", r, vs)
	}
}

func TestSVGIsXML(t *testing.T) {
	r := &Report{DurationS: 3, Schedule: &Schedule{}, Ports: []PortReport{{PortSpec: PortSpec{Name: "p0", HostToGuest: true},
		Series: []Sample{{T: 1, G2H: 1 << 20, H2G: 2 << 20}, {T: 2, G2H: 3 << 20, H2G: 3 << 20}}}},
		Intervals: []Interval{{Port: 0, Kind: Kill, Start: 1, End: 1.5}}}
	var b strings.Builder
	if err := r.SVG(&b); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(b.String()))
	rects := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not XML: %v\n%s", err, b.String())
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	if rects < 3 {
		t.Errorf("SVG has %d rects; want background, legend, shading and frame", rects)
	}
}
