package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// chartDir is where the charts go, relative to the report's directory;
// the report links them with this relative path.
const chartDir = "img"

// chart is a latency distribution (an empirical CDF per series), drawn as
// SVG by the lab itself: no plotting tool, no external style sheet, so it
// renders the same on GitHub, in an editor and in a browser.
type chart struct {
	File   string // file name inside chartDir
	Title  string
	Series []series
}

type series struct {
	Name string
	Lat  durations
}

// Chart geometry, in SVG user units (pixels).
const (
	chartW, chartH                       = 760, 440
	padLeft, padRight, padTop, padBottom = 64, 24, 44, 110
)

// palette is readable on light and dark backgrounds and for the common
// colour-vision deficiencies (Okabe–Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9"}

// svg renders the chart.
func (c *chart) svg() []byte {
	var lo, hi float64 = math.Inf(1), 0
	for _, s := range c.Series {
		for _, d := range s.Lat {
			v := ms64(d)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) { // no samples at all
		lo, hi = 1, 10
	}
	if hi <= lo {
		hi = lo * 1.1
	}
	x := newAxis(lo, hi)
	plotW, plotH := float64(chartW-padLeft-padRight), float64(chartH-padTop-padBottom)
	px := func(v float64) float64 { return padLeft + x.pos(v)*plotW }
	py := func(f float64) float64 { return padTop + (1-f)*plotH }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padLeft, esc(c.Title))

	// Grid and axes.
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 0.9, 1} {
		dash := ` stroke-dasharray="3,3"`
		if f == 0 || f == 1 {
			dash = ""
		}
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#cccccc"%s/>`+"\n",
			num(padLeft), num(py(f)), num(padLeft+plotW), num(py(f)), dash)
		label := fmt.Sprintf("%g%%", f*100)
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end" dominant-baseline="middle" fill="#444444">%s</text>`+"\n",
			num(padLeft-6), num(py(f)), label)
	}
	for _, t := range x.ticks() {
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e4e4e4"/>`+"\n", num(px(t)), num(py(1)), num(px(t)), num(py(0)))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#444444">%s</text>`+"\n", num(px(t)), num(py(0)+16), tickLabel(t))
	}
	scale := "linear"
	if x.log {
		scale = "log"
	}
	fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#222222">latency, ms (%s scale)</text>`+"\n",
		num(padLeft+plotW/2), num(py(0)+34), scale)
	fmt.Fprintf(&b, `<text transform="translate(16,%s) rotate(-90)" text-anchor="middle" fill="#222222">operations at most this slow</text>`+"\n",
		num(padTop+plotH/2))

	// One step line per series: after the i-th fastest sample, i/n of the
	// operations were at most that slow.
	for k, s := range c.Series {
		if len(s.Lat) == 0 {
			continue
		}
		color := palette[k%len(palette)]
		sorted := slices.Clone(s.Lat)
		slices.Sort(sorted)
		var pts []string
		prev := 0.0
		for i, d := range sorted {
			xv := num(px(ms64(d)))
			f := float64(i+1) / float64(len(sorted))
			pts = append(pts, xv+","+num(py(prev)), xv+","+num(py(f)))
			prev = f
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`+"\n",
			color, strings.Join(pts, " "), esc(s.Name))
	}

	// Legend under the plot, two columns, with each series' p50 / p99.
	for k, s := range c.Series {
		color := palette[k%len(palette)]
		col, row := k%2, k/2
		lx := float64(padLeft) + float64(col)*plotW/2
		ly := py(0) + 52 + float64(row)*18
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="3"/>`+"\n",
			num(lx), num(ly), num(lx+22), num(ly), color)
		fmt.Fprintf(&b, `<text x="%s" y="%s" dominant-baseline="middle">%s (p50 %s, p99 %s)</text>`+"\n",
			num(lx+28), num(ly), esc(s.Name), esc(msec(s.Lat.p50())), esc(msec(s.Lat.p99())))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// axis maps latencies to [0, 1] across the plot: logarithmic when they
// span more than a factor of 8, so that a 5 ms and a 700 ms distribution
// both show their shape.
type axis struct {
	lo, hi float64
	log    bool
}

func newAxis(lo, hi float64) axis {
	if lo > 0 && hi/lo > 8 {
		// Whole 1-2-5 steps around the data.
		return axis{lo: niceBelow(lo), hi: niceAbove(hi), log: true}
	}
	step := niceStep((hi - lo) / 6)
	return axis{lo: math.Max(0, math.Floor(lo/step)*step), hi: math.Ceil(hi/step) * step}
}

func (a axis) pos(v float64) float64 {
	if a.log {
		return (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	}
	return (v - a.lo) / (a.hi - a.lo)
}

func (a axis) ticks() []float64 {
	var out []float64
	if a.log {
		for dec := math.Pow(10, math.Floor(math.Log10(a.lo))); dec <= a.hi; dec *= 10 {
			for _, m := range []float64{1, 2, 5} {
				if v := m * dec; v >= a.lo*0.999 && v <= a.hi*1.001 {
					out = append(out, v)
				}
			}
		}
		return out
	}
	step := niceStep((a.hi - a.lo) / 6)
	for v := a.lo; v <= a.hi+step/2; v += step {
		out = append(out, v)
	}
	return out
}

// niceStep rounds d up to 1, 2 or 5 times a power of ten.
func niceStep(d float64) float64 {
	if d <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(d)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= d {
			return m * p
		}
	}
	return 10 * p
}

// niceBelow and niceAbove are the nearest 1-2-5 values under and over v.
func niceBelow(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{5, 2, 1} {
		if m*p <= v {
			return m * p
		}
	}
	return p
}

func niceAbove(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func tickLabel(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func ms64(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// num prints a coordinate with one decimal: enough for a pixel, and the
// file stays small.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeCharts writes every section's chart into dir/chartDir.
func writeCharts(dir string, sections []section) error {
	out := filepath.Join(dir, chartDir)
	for _, s := range sections {
		if s.Chart == nil {
			continue
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, s.Chart.File), s.Chart.svg(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
