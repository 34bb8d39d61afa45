package console

import (
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// svgShapes collects the coordinates of the data drawn in a chart: the
// polyline vertices and circle centres.
func svgShapes(t *testing.T, svg string) (points [][2]float64, links []string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	parse := func(s string) float64 {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("coordinate %q: %v", s, err)
		}
		return f
	}
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := func(name string) string {
			for _, a := range el.Attr {
				if a.Name.Local == name {
					return a.Value
				}
			}
			return ""
		}
		switch el.Name.Local {
		case "polyline":
			for _, xy := range strings.Fields(attr("points")) {
				x, y, _ := strings.Cut(xy, ",")
				points = append(points, [2]float64{parse(x), parse(y)})
			}
		case "circle":
			points = append(points, [2]float64{parse(attr("cx")), parse(attr("cy"))})
		case "a":
			links = append(links, attr("href"))
		}
	}
	return points, links
}

func TestLineChart(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name       string
		chart      lineChart
		wantPoints int
		wantLinks  []string
		wantText   []string
	}{
		{"empty", lineChart{Title: "nothing"}, 0, nil, []string{"no data"}},
		{"empty series", lineChart{Series: []chartSeries{{Name: "a"}}}, 0, nil, []string{"no data"}},
		{"single point", lineChart{Series: []chartSeries{{Name: "a", Points: []chartPoint{{at(0), 5}}}}}, 1, nil, []string{`class="pt"`}},
		{"two series", lineChart{Series: []chartSeries{
			{Name: "p50", Points: []chartPoint{{at(0), 1}, {at(10), 2}, {at(20), 3}}},
			{Name: "p99", Points: []chartPoint{{at(0), 10}, {at(10), 20}, {at(20), 30}}},
		}}, 6, nil, []string{"<polyline", `class="series s1"`, "<title>p99</title>"}},
		{"non-finite skipped", lineChart{Series: []chartSeries{{Name: "a", Points: []chartPoint{
			{at(0), 1}, {at(10), math.NaN()}, {at(20), math.Inf(1)}, {at(30), 4}, {at(40), 5}, {at(50), math.Inf(-1)},
		}}}}, 3, nil, nil},
		{"negative values", lineChart{Series: []chartSeries{{Name: "a", Points: []chartPoint{{at(0), -5}, {at(60), 5}}}}}, 2, nil, nil},
		{"huge values", lineChart{Series: []chartSeries{{Name: "a", Points: []chartPoint{{at(0), 1e300}, {at(60), -1e300}}}}}, 2, nil, nil},
		{"points outside the window", lineChart{From: at(10), To: at(20), Series: []chartSeries{{Name: "a", Points: []chartPoint{
			{at(0), 1}, {at(10), 2}, {at(15), 3}, {at(20), 4}, {at(30), 5},
		}}}}, 3, nil, nil},
		{"exemplar dots", lineChart{
			Series: []chartSeries{{Name: "v", Points: []chartPoint{{at(0), 1}, {at(30), 2}}}},
			Dots: []chartDot{
				{Time: at(15), Value: 1.5, Href: "/traces/ab?x=1&y=<2>", Title: `"evil" <b>`},
				{Time: at(20), Value: math.NaN(), Href: "/skipped"},
				{Time: at(25), Value: 1.8},
			},
			Format: formatNanos,
		}, 4, []string{"/traces/ab?x=1&y=<2>"}, []string{"&lt;b&gt;", "&amp;y=&lt;2&gt;"}},
		{"hostile names", lineChart{Title: "</svg><script>", Series: []chartSeries{{Name: "\x00<script>\x1b", Points: []chartPoint{{at(0), 1}, {at(1), 1}}}}},
			2, nil, []string{"&lt;script&gt;"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := string(tt.chart.SVG())
			checkXML(t, svg)
			if !strings.HasPrefix(svg, `<svg class="chart"`) {
				t.Errorf("SVG starts %.40q, want an svg of class chart", svg)
			}
			if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") || strings.Contains(svg, "<script") {
				t.Errorf("SVG contains NaN, Inf or a script:\n%s", svg)
			}
			points, links := svgShapes(t, svg)
			if len(points) != tt.wantPoints {
				t.Errorf("drew %d points, want %d:\n%s", len(points), tt.wantPoints, svg)
			}
			for _, p := range points {
				if p[0] < chartMarginLeft-0.01 || p[0] > float64(chartMarginLeft+plotWidth())+0.01 ||
					p[1] < chartMarginTop-0.01 || p[1] > float64(chartMarginTop+plotHeight())+0.01 {
					t.Errorf("point %v outside the plot area", p)
				}
			}
			if strings.Join(links, " ") != strings.Join(tt.wantLinks, " ") {
				t.Errorf("links = %q, want %q", links, tt.wantLinks)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(svg, s) {
					t.Errorf("SVG lacks %q:\n%s", s, svg)
				}
			}
		})
	}
}

// TestLineChartScale: the highest value sits at or below the top of the
// plot and zero on a gridline at the bottom.
func TestLineChartScale(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	ch := lineChart{Series: []chartSeries{{Name: "a", Points: []chartPoint{{t0, 0}, {t0.Add(time.Minute), 87}}}}}
	points, _ := svgShapes(t, string(ch.SVG()))
	if len(points) != 2 {
		t.Fatalf("drew %d points, want 2", len(points))
	}
	bottom := float64(chartMarginTop + plotHeight())
	if points[0][1] != bottom || points[0][0] != chartMarginLeft {
		t.Errorf("(t0, 0) drawn at %v, want (%d, %v)", points[0], chartMarginLeft, bottom)
	}
	if points[1][1] <= chartMarginTop || points[1][0] != float64(chartMarginLeft+plotWidth()) {
		t.Errorf("(t0+1m, 87) drawn at %v, want below the top %d at the right edge", points[1], chartMarginTop)
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   string
	}{
		{0, 87, "0 20 40 60 80 100"},
		{0, 1, "0 0.2 0.4 0.6 0.8 1"},
		{-5, 5, "-6 -4 -2 0 2 4 6"},
		{0, 0.003, "0 0.001 0.002 0.003"},
		{0.1, 0.7, "0 0.2 0.4 0.6 0.8"},
	}
	for _, tt := range tests {
		var got []string
		for _, v := range niceTicks(tt.lo, tt.hi, 5) {
			got = append(got, strconv.FormatFloat(v, 'g', 4, 64))
		}
		if s := strings.Join(got, " "); s != tt.want {
			t.Errorf("niceTicks(%v, %v, 5) = %s, want %s", tt.lo, tt.hi, s, tt.want)
		}
	}
}

func TestTimeTicks(t *testing.T) {
	from := time.Date(2026, 1, 2, 15, 0, 7, 0, time.UTC)
	ticks := timeTicks(from, from.Add(15*time.Minute), 6)
	if len(ticks) == 0 || len(ticks) > 8 {
		t.Fatalf("timeTicks over 15m = %d ticks, want 1 to 8", len(ticks))
	}
	for _, tk := range ticks {
		if tk.Before(from) || tk.After(from.Add(15*time.Minute)) || tk.Second() != 0 || tk.Minute()%5 != 0 {
			t.Errorf("tick %s: want a multiple of 5 minutes within the range", tk)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"}, {0.25, "0.25"}, {12.5, "12.5"}, {-3, "-3"}, {12345, "12.3k"}, {3.4e6, "3.4M"}, {0.001, "0.001"},
	}
	for _, tt := range tests {
		if got := formatNumber(tt.v); got != tt.want {
			t.Errorf("formatNumber(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

// svgElements returns the attributes of every element of svg named name,
// in document order.
func svgElements(t *testing.T, svg, name string) []map[string]string {
	t.Helper()
	var out []map[string]string
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if err != nil {
			return out
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == name {
			attrs := make(map[string]string, len(el.Attr))
			for _, a := range el.Attr {
				attrs[a.Name.Local] = a.Value
			}
			out = append(out, attrs)
		}
	}
}

// TestLineChartCoincidentSeries: series with equal values stay visible.
// Lines are drawn narrower than the ones beneath them, and a lone point
// of a later series is a ring larger than the earlier series' points.
func TestLineChartCoincidentSeries(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	lone := lineChart{Series: []chartSeries{
		{Name: "p50", Points: []chartPoint{{t0, 100}}},
		{Name: "p99", Points: []chartPoint{{t0, 100}}},
	}}
	circles := svgElements(t, string(lone.SVG()), "circle")
	if len(circles) != 2 {
		t.Fatalf("lone points drew %d circles, want 2", len(circles))
	}
	r0, _ := strconv.ParseFloat(circles[0]["r"], 64)
	r1, _ := strconv.ParseFloat(circles[1]["r"], 64)
	if circles[1]["class"] != "pt ring" || r1 <= r0+1 {
		t.Errorf("p99 point class %q r=%v over p50 r=%v, want a ring at least 1 unit larger", circles[1]["class"], r1, r0)
	}

	line := []chartPoint{{t0, 1}, {t0.Add(time.Minute), 2}}
	lines := lineChart{Series: []chartSeries{{Name: "p50", Points: line}, {Name: "p95", Points: line}, {Name: "p99", Points: line}}}
	var widths []float64
	for _, pl := range svgElements(t, string(lines.SVG()), "polyline") {
		w, err := strconv.ParseFloat(strings.TrimPrefix(pl["style"], "stroke-width: "), 64)
		if err != nil {
			t.Fatalf("polyline style %q: %v", pl["style"], err)
		}
		widths = append(widths, w)
	}
	if len(widths) != 3 || widths[0] <= widths[1] || widths[1] <= widths[2] {
		t.Errorf("stroke widths %v, want 3 strictly decreasing", widths)
	}
}

// TestLineChartAxisLabels: every time tick has a label that fits inside
// the chart, and the labels are large enough to read.
func TestLineChartAxisLabels(t *testing.T) {
	if scaled := chartFontSize * 500.0 / chartWidth; scaled < 11 {
		t.Errorf("labels render at %.1f px in a 500 px cell, want at least 11", scaled)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, span := range []time.Duration{50 * time.Second, time.Minute, 15 * time.Minute} {
		ch := lineChart{Series: []chartSeries{{Name: "v", Points: []chartPoint{{t0, 1}, {t0.Add(span), 2}}}}}
		svg := string(ch.SVG())
		if got := svgElements(t, svg, "svg")[0]["font-size"]; got != strconv.Itoa(chartFontSize) {
			t.Errorf("span %v: font-size %q, want %d", span, got, chartFontSize)
		}
		ticks := svgElements(t, svg, "line")
		var xs []float64
		for _, l := range ticks {
			if l["class"] == "xtick" {
				x, _ := strconv.ParseFloat(l["x1"], 64)
				xs = append(xs, x)
			}
		}
		var labels []map[string]string
		for _, txt := range svgElements(t, svg, "text") {
			if txt["text-anchor"] != "end" || txt["x"] != strconv.Itoa(chartMarginLeft-6) { // not a value label
				labels = append(labels, txt)
			}
		}
		if len(xs) == 0 || len(labels) != len(xs) {
			t.Fatalf("span %v: %d time ticks, %d time labels, want equal and nonzero", span, len(xs), len(labels))
		}
		const w = 8 * chartLabelWidth // "15:04:05"
		for i, l := range labels {
			x, _ := strconv.ParseFloat(l["x"], 64)
			if x != xs[i] {
				t.Errorf("span %v: label %d at x=%v, tick at %v", span, i, x, xs[i])
			}
			lo, hi := x-w/2, x+w/2
			switch l["text-anchor"] {
			case "start":
				lo, hi = x, x+w
			case "end":
				lo, hi = x-w, x
			}
			if lo < 0 || hi > chartWidth {
				t.Errorf("span %v: label %d spans [%.1f, %.1f], outside the chart", span, i, lo, hi)
			}
		}
	}
}

// TestLineChartEmpty: a chart with nothing to draw shows its Empty
// message, escaped.
func TestLineChartEmpty(t *testing.T) {
	svg := string(lineChart{Empty: "no <requests>"}.SVG())
	checkXML(t, svg)
	if !strings.Contains(svg, ">no &lt;requests&gt;</text>") {
		t.Errorf("empty chart lacks its message:\n%s", svg)
	}
}
