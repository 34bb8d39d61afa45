package console

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Chart geometry, in SVG user units. The plot area is the box inside the
// margins; the SVG scales to its container's width (viewBox).
const (
	chartWidth        = 560
	chartHeight       = 200
	chartMarginLeft   = 64
	chartMarginRight  = 16
	chartMarginTop    = 12
	chartMarginBottom = 30
	chartYTicks       = 5
	chartXTicks       = 6
	maxChartSeries    = 8 // series beyond this share the last color class
	// chartFontSize is the size of the axis labels. The charts' grid
	// cells are at least 500 px wide (chartWidth user units scaled by
	// 500/560 or more), so labels render at 11.6 px or larger.
	chartFontSize = 13
	// chartLabelWidth estimates the width of one character of an axis
	// label, in user units, to keep time labels inside the chart.
	chartLabelWidth = 0.62 * chartFontSize
)

// lineChart is a time-series line chart rendered as inline SVG by [lineChart.SVG].
// The zero value is an empty chart that says so.
type lineChart struct {
	// Title labels the chart for assistive technology (aria-label); the
	// page shows its own heading.
	Title string
	// Series are drawn in order, each in its own color class s0, s1, ….
	Series []chartSeries
	// Dots are markers drawn over the lines, such as exemplars; a dot with
	// an Href links there.
	Dots []chartDot
	// Format renders a value on the y axis and in tooltips. Default
	// formatNumber.
	Format func(float64) string
	// From and To fix the time axis; when zero, the axis spans the data.
	From, To time.Time
	// Empty is the message shown when there is nothing to draw. Default
	// "no data".
	Empty string
}

// chartSeries is one named line of (time, value) points in time order.
// Points whose value is NaN or infinite are skipped and break the line.
type chartSeries struct {
	Name   string
	Points []chartPoint
}

// chartPoint is one (time, value) sample.
type chartPoint struct {
	Time  time.Time
	Value float64
}

// chartDot is a marker at (Time, Value). Href, when set, makes it a link;
// Title is its tooltip.
type chartDot struct {
	Time  time.Time
	Value float64
	Href  string
	Title string
}

// SVG renders the chart as an <svg class="chart"> element. Every piece of
// text (series names, titles, links) is escaped, so the chart may carry
// names from untrusted senders; characters that XML forbids are replaced
// by U+FFFD, so the output is also well-formed XML.
func (ch lineChart) SVG() template.HTML {
	format := ch.Format
	if format == nil {
		format = formatNumber
	}
	from, to, lo, hi, ok := ch.bounds()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" font-size="%d" role="img" aria-label="%s">`,
		chartWidth, chartHeight, chartFontSize, xmlEscape(ch.Title))
	fmt.Fprintf(&b, `<rect class="plot" x="%d" y="%d" width="%d" height="%d"/>`,
		chartMarginLeft, chartMarginTop, plotWidth(), plotHeight())
	if !ok {
		empty := ch.Empty
		if empty == "" {
			empty = "no data"
		}
		fmt.Fprintf(&b, `<text class="nodata" x="%d" y="%d" text-anchor="middle">%s</text></svg>`,
			chartMarginLeft+plotWidth()/2, chartMarginTop+plotHeight()/2, xmlEscape(empty))
		return template.HTML(b.String())
	}
	x := func(t time.Time) float64 {
		return chartMarginLeft + float64(t.Sub(from))/float64(to.Sub(from))*float64(plotWidth())
	}
	y := func(v float64) float64 {
		return chartMarginTop + (hi-v)/(hi-lo)*float64(plotHeight())
	}

	// Axes: horizontal grid lines with value labels, vertical ticks with
	// clock labels. A clock label that would cross the chart's edge is
	// aligned to its tick instead of centred on it.
	b.WriteString(`<g class="axis">`)
	for _, v := range niceTicks(lo, hi, chartYTicks) {
		yy := y(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>`, chartMarginLeft, num(yy), chartMarginLeft+plotWidth(), num(yy))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end">%s</text>`, chartMarginLeft-6, num(yy+chartFontSize*0.35), xmlEscape(format(v)))
	}
	for _, t := range timeTicks(from, to, chartXTicks) {
		xx := x(t)
		bottom := chartMarginTop + plotHeight()
		label := formatTime(t, "15:04:05")
		half := float64(utf8.RuneCountInString(label)) * chartLabelWidth / 2
		anchor := "middle"
		switch {
		case xx-half < 0:
			anchor = "start"
		case xx+half > chartWidth:
			anchor = "end"
		}
		fmt.Fprintf(&b, `<line class="xtick" x1="%s" y1="%d" x2="%s" y2="%d"/>`, num(xx), bottom, num(xx), bottom+5)
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="%s">%s</text>`, num(xx), bottom+5+chartFontSize, anchor, xmlEscape(label))
	}
	b.WriteString(`</g>`)

	// Series that coincide must all stay visible (p50 equal to p99, say):
	// each line is narrower than the one before, which it is drawn over,
	// and each lone point is a ring around the points of earlier series.
	for i, s := range ch.Series {
		class := "s" + strconv.Itoa(min(i, maxChartSeries-1))
		width := 1.5 + 0.9*float64(len(ch.Series)-1-i)
		fmt.Fprintf(&b, `<g class="series %s"><title>%s</title>`, class, xmlEscape(s.Name))
		var line [][2]float64
		flush := func() {
			switch len(line) {
			case 0:
			case 1: // a lone point has no line: show it as a dot or a ring
				if i == 0 {
					fmt.Fprintf(&b, `<circle class="pt" cx="%s" cy="%s" r="3"/>`, num(line[0][0]), num(line[0][1]))
				} else {
					fmt.Fprintf(&b, `<circle class="pt ring" cx="%s" cy="%s" r="%s"/>`, num(line[0][0]), num(line[0][1]), num(3+2*float64(i)))
				}
			default:
				fmt.Fprintf(&b, `<polyline style="stroke-width: %s" points="`, num(width))
				for j, xy := range line {
					if j > 0 {
						b.WriteByte(' ')
					}
					b.WriteString(num(xy[0]) + "," + num(xy[1]))
				}
				b.WriteString(`"/>`)
			}
			line = line[:0]
		}
		for _, p := range s.Points {
			if !finite(p.Value) || p.Time.Before(from) || p.Time.After(to) {
				flush()
				continue
			}
			line = append(line, [2]float64{x(p.Time), y(p.Value)})
		}
		flush()
		b.WriteString(`</g>`)
	}

	if len(ch.Dots) > 0 {
		b.WriteString(`<g class="dots">`)
		for _, d := range ch.Dots {
			if !finite(d.Value) || d.Time.Before(from) || d.Time.After(to) {
				continue
			}
			title := d.Title
			if title == "" {
				title = format(d.Value)
			}
			dot := fmt.Sprintf(`<circle cx="%s" cy="%s" r="4"><title>%s</title></circle>`, num(x(d.Time)), num(y(d.Value)), xmlEscape(title))
			if d.Href != "" {
				fmt.Fprintf(&b, `<a href="%s">%s</a>`, xmlEscape(d.Href), dot)
			} else {
				b.WriteString(dot)
			}
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Legend returns the series names with their color classes, for the page
// to show next to the chart.
func (ch lineChart) Legend() []legendEntry {
	out := make([]legendEntry, len(ch.Series))
	for i, s := range ch.Series {
		out[i] = legendEntry{Name: s.Name, Class: "s" + strconv.Itoa(min(i, maxChartSeries-1))}
	}
	return out
}

// legendEntry names a series and its color class.
type legendEntry struct {
	Name, Class string
}

func plotWidth() int  { return chartWidth - chartMarginLeft - chartMarginRight }
func plotHeight() int { return chartHeight - chartMarginTop - chartMarginBottom }

// bounds returns the time and value ranges of the finite data, widened so
// neither is empty; the value range includes zero. ok is false when there
// is nothing to draw.
func (ch lineChart) bounds() (from, to time.Time, lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	see := func(t time.Time, v float64) {
		if !finite(v) || (!ch.From.IsZero() && t.Before(ch.From)) || (!ch.To.IsZero() && t.After(ch.To)) {
			return
		}
		if !ok || t.Before(from) {
			from = t
		}
		if !ok || t.After(to) {
			to = t
		}
		lo, hi, ok = min(lo, v), max(hi, v), true
	}
	for _, s := range ch.Series {
		for _, p := range s.Points {
			see(p.Time, p.Value)
		}
	}
	for _, d := range ch.Dots {
		see(d.Time, d.Value)
	}
	if !ch.From.IsZero() {
		from = ch.From
	}
	if !ch.To.IsZero() {
		to = ch.To
	}
	if !ok {
		return
	}
	if !to.After(from) {
		from, to = from.Add(-30*time.Second), to.Add(30*time.Second)
	}
	lo, hi = min(lo, 0), max(hi, 0)
	if hi == lo {
		hi = lo + 1
	}
	// Extend the range to whole ticks so the highest line does not touch
	// the frame.
	if ticks := niceTicks(lo, hi, chartYTicks); len(ticks) > 1 {
		lo, hi = min(lo, ticks[0]), max(hi, ticks[len(ticks)-1])
	}
	return from, to, lo, hi, true
}

// niceTicks returns about n values at a round step (1, 2 or 5 times a
// power of ten) covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	step := niceStep((hi - lo) / float64(n))
	if step <= 0 || !finite(step) {
		return []float64{lo}
	}
	// Ticks from the multiple of step at or below lo to the first at or
	// above hi, computed by multiplication so errors do not accumulate.
	first := math.Floor(lo/step + 1e-9)
	var out []float64
	for i := 0.0; len(out) <= 2*n+2; i++ {
		v := (first + i) * step
		out = append(out, v)
		if v >= hi-step*1e-9 {
			break
		}
	}
	return out
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || !finite(raw) {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// timeSteps are the spacings the time axis chooses from.
var timeSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// timeTicks returns at most about n round times (multiples of a step from
// timeSteps) within [from, to].
func timeTicks(from, to time.Time, n int) []time.Time {
	span := to.Sub(from)
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= time.Duration(n) {
			step = s
			break
		}
	}
	var out []time.Time
	for t := from.Truncate(step); !t.After(to) && len(out) <= 2*n; t = t.Add(step) {
		if !t.Before(from) {
			out = append(out, t)
		}
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// num formats an SVG coordinate with two decimals.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// formatNumber renders v compactly: 0.25, 12.5, 1.2k, 3.4M.
func formatNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case !finite(v):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case a >= 1e9:
		return trimFloat(v/1e9) + "G"
	case a >= 1e6:
		return trimFloat(v/1e6) + "M"
	case a >= 1e4:
		return trimFloat(v/1e3) + "k"
	case a == 0:
		return "0"
	case a < 0.01:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	if v < 0 {
		return "-" + trimFloat(-v)
	}
	return trimFloat(v)
}

// formatNanos renders a value in nanoseconds as a duration (12.3ms).
func formatNanos(v float64) string { return formatDuration(time.Duration(v)) }

// formatPercent renders a ratio in [0, 1] as a percentage.
func formatPercent(v float64) string { return formatNumber(v*100) + "%" }

// xmlEscape escapes s for XML text and attribute values. It replaces
// invalid UTF-8 and characters that XML 1.0 does not allow (most control
// characters) with U+FFFD first, so the result is well-formed XML as
// well as safe HTML.
func xmlEscape(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF) {
			return r
		}
		return utf8.RuneError
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return template.HTMLEscapeString(s)
}
