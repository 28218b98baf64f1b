package soak

import (
	"fmt"
	"io"
	"strings"
	"text/template"
)

// The picture: one row per port, its throughput each way per second,
// with the intervals its chaos blocked it shaded by kind.

var kindColor = map[Kind]string{
	Slow: "#f6d55c", Pause: "#f4a261", Reconnect: "#9ad0f5", Kill: "#e76f51", NoReader: "#b5a3e0", Away: "#8ecf9c",
}

var kindOrder = []Kind{Slow, Pause, Reconnect, Kill, NoReader, Away}

type svgRect struct {
	X, Y, W, H float64
	Color      string
	Title      string
}

type svgRow struct {
	Label    string
	Y, H     float64
	G2H, H2G string // polyline points
	Max      string
	Shades   []svgRect
}

type svgData struct {
	W, H, Left, PlotW float64
	Title             string
	Rows              []svgRow
	Legend            []svgRect
	Ticks             []svgTick
	Bottom            float64
}

type svgTick struct {
	X     float64
	Label string
}

var svgTmpl = template.Must(template.New("svg").Parse(`<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{{.Left}}" y="16" font-size="13">{{.Title}}</text>
{{range .Legend}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Color}}"/><text x="{{printf "%.1f" .X}}" dx="14" y="{{.Y}}" dy="9">{{.Title}}</text>
{{end}}{{range .Rows}}<g>
<text x="4" y="{{.Y}}" dy="12">{{.Label}}</text>
<text x="4" y="{{.Y}}" dy="26" fill="#666">max {{.Max}}</text>
{{range .Shades}}<rect x="{{printf "%.1f" .X}}" y="{{.Y}}" width="{{printf "%.1f" .W}}" height="{{.H}}" fill="{{.Color}}" opacity="0.6"><title>{{.Title}}</title></rect>
{{end}}<rect x="{{$.Left}}" y="{{.Y}}" width="{{$.PlotW}}" height="{{.H}}" fill="none" stroke="#999"/>
<polyline fill="none" stroke="#1f77b4" stroke-width="1.2" points="{{.G2H}}"/>
<polyline fill="none" stroke="#d62728" stroke-width="1.2" points="{{.H2G}}"/>
</g>
{{end}}{{range .Ticks}}<text x="{{printf "%.1f" .X}}" y="{{$.Bottom}}" text-anchor="middle">{{.Label}}</text>
{{end}}</svg>
`))

// SVG draws the report's throughput picture.
func (r *Report) SVG(w io.Writer) error {
	const left, right, rowH, gap, top = 90.0, 20.0, 70.0, 14.0, 56.0
	d := svgData{W: 1100, Left: left, PlotW: 1100 - left - right,
		Title: fmt.Sprintf("vmm soak: per-port MiB/s, guest→host (blue) and host→guest (red); %.0fs, %d violations",
			r.DurationS, len(r.Violations))}
	dur := max(r.DurationS, 1)
	x := func(t float64) float64 { return left + min(max(t, 0), dur)/dur*d.PlotW }
	for i, k := range kindOrder {
		d.Legend = append(d.Legend, svgRect{X: left + float64(i)*110, Y: 26, W: 10, H: 10, Color: kindColor[k], Title: string(k)})
	}
	for i, p := range r.Ports {
		y := top + float64(i)*(rowH+gap)
		row := svgRow{Label: fmt.Sprintf("%s (%s)", p.Name, p.Backend), Y: y, H: rowH}
		g2h, h2g := windows(p.Series, true), windows(p.Series, false)
		peak := 0.0
		for j := range g2h {
			peak = max(peak, mib(g2h[j]), mib(h2g[j]))
		}
		peak = max(peak, 0.001)
		row.Max = fmt.Sprintf("%.1f MiB/s", peak)
		line := func(win []int64) string {
			var b strings.Builder
			for j, v := range win {
				t := float64(j) + 0.5
				if j < len(p.Series) {
					t = p.Series[j].T - 0.5
				}
				fmt.Fprintf(&b, "%.1f,%.1f ", x(t), y+rowH-mib(v)/peak*rowH)
			}
			return b.String()
		}
		row.G2H = line(g2h)
		if p.HostToGuest {
			row.H2G = line(h2g)
		}
		for _, iv := range r.Intervals {
			if iv.Port == p.Index {
				row.Shades = append(row.Shades, svgRect{X: x(iv.Start), Y: y, W: max(x(iv.End)-x(iv.Start), 1), H: rowH,
					Color: kindColor[iv.Kind], Title: fmt.Sprintf("%s %.1f–%.1fs", iv.Kind, iv.Start, iv.End)})
			}
		}
		d.Rows = append(d.Rows, row)
	}
	d.Bottom = top + float64(len(r.Ports))*(rowH+gap) + 4
	d.H = d.Bottom + 16
	step := max(1.0, float64(int(dur/10/5+1)*5))
	for t := 0.0; t <= dur; t += step {
		d.Ticks = append(d.Ticks, svgTick{X: x(t), Label: fmt.Sprintf("%.0fs", t)})
	}
	return svgTmpl.Execute(w, d)
}
