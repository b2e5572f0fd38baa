package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// svgDoc is the part of a chart's SVG the tests look at.
type svgDoc struct {
	Width     int      `xml:"width,attr"`
	Height    int      `xml:"height,attr"`
	Polylines []poly   `xml:"polyline"`
	Texts     []string `xml:"text"`
}

type poly struct {
	Points string `xml:"points,attr"`
	Title  string `xml:"title"`
}

func parseSVG(t *testing.T, data []byte) svgDoc {
	t.Helper()
	// Every token must decode: a chart is well-formed XML.
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	var doc svgDoc
	require.NoError(t, xml.Unmarshal(data, &doc))
	return doc
}

func msList(v ...float64) durations {
	var d durations
	for _, x := range v {
		d = append(d, time.Duration(x*float64(time.Millisecond)))
	}
	return d
}

func TestChartSVG(t *testing.T) {
	c := &chart{File: "x.svg", Title: `flypg <vs> "direct" & co`, Series: []series{
		{Name: "fast <a>", Lat: msList(52, 50, 51, 60)},
		{Name: "slow & steady", Lat: msList(700, 650, 800)},
		{Name: "empty", Lat: nil},
	}}
	doc := parseSVG(t, c.svg())
	assert.Equal(t, chartW, doc.Width)
	assert.Equal(t, chartH, doc.Height)
	require.Len(t, doc.Polylines, 2, "one line per series with samples")
	assert.Equal(t, "fast <a>", doc.Polylines[0].Title, "names escaped, and read back whole")
	assert.Equal(t, "slow & steady", doc.Polylines[1].Title)
	assert.Contains(t, doc.Texts, `flypg <vs> "direct" & co`)
	assert.Contains(t, strings.Join(doc.Texts, "\n"), "log scale", "50 ms to 800 ms spans more than 8×")

	var lastX [2]float64
	for k, p := range doc.Polylines {
		pts := strings.Fields(p.Points)
		require.Len(t, pts, 2*len(c.Series[k].Lat), "two points per sample: a step")
		prevX, prevY := -1.0, float64(chartH)
		for _, pt := range pts {
			xs, ys, ok := strings.Cut(pt, ",")
			require.True(t, ok)
			x, err := strconv.ParseFloat(xs, 64)
			require.NoError(t, err)
			y, err := strconv.ParseFloat(ys, 64)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, x, float64(padLeft)-0.1, "inside the plot")
			assert.LessOrEqual(t, x, float64(chartW-padRight)+0.1, "inside the plot")
			assert.GreaterOrEqual(t, x, prevX, "sorted by latency")
			assert.LessOrEqual(t, y, prevY, "a CDF only rises (SVG's y grows downwards)")
			prevX, prevY = x, y
		}
		assert.InDelta(t, float64(padTop), prevY, 0.1, "ends at 100%%")
		lastX[k] = prevX
	}
	assert.Less(t, lastX[0], lastX[1], "the slower series ends further right")
}

func TestChartLinearAxis(t *testing.T) {
	a := newAxis(52, 61)
	assert.False(t, a.log, "a narrow range is linear")
	assert.LessOrEqual(t, a.lo, 52.0)
	assert.GreaterOrEqual(t, a.hi, 61.0)
	ticks := a.ticks()
	require.NotEmpty(t, ticks)
	for i, v := range ticks {
		assert.GreaterOrEqual(t, a.pos(v), -1e-9)
		assert.LessOrEqual(t, a.pos(v), 1+1e-9)
		if i > 0 {
			assert.Greater(t, v, ticks[i-1])
		}
	}
	l := newAxis(0.2, 900)
	assert.True(t, l.log)
	assert.Equal(t, []float64{0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}, l.ticks())
	assert.InDelta(t, 0, l.pos(0.2), 1e-9)
	assert.InDelta(t, 1, l.pos(1000), 1e-9)

	// No samples at all still draws an empty chart.
	doc := parseSVG(t, (&chart{Title: "none"}).svg())
	assert.Empty(t, doc.Polylines)
}

func TestWriteCharts(t *testing.T) {
	dir := t.TempDir()
	secs := []section{{Title: "no chart"}, {Chart: &chart{File: "a.svg", Title: "a", Series: []series{{Name: "s", Lat: msList(1, 2)}}}}}
	require.NoError(t, writeCharts(dir, secs))
	data, err := os.ReadFile(filepath.Join(dir, chartDir, "a.svg"))
	require.NoError(t, err)
	parseSVG(t, data)
	entries, err := os.ReadDir(filepath.Join(dir, chartDir))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "one file per chart")
}
