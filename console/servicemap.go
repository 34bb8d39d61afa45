package console

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
)

// serviceGraph is the service map: which services call which, derived
// from the parent/child links of the stored spans.
type serviceGraph struct {
	Services []serviceNode `json:"services"` // by name
	Edges    []serviceEdge `json:"edges"`    // by caller, then callee
}

// serviceNode is one service of the map.
type serviceNode struct {
	Name   string `json:"name"`
	Spans  int    `json:"spans"`
	Errors int    `json:"errors"` // spans with error status
	// Rank is the node's column in the drawing: the length of the longest
	// call chain reaching it from a service nobody calls (cycles broken).
	Rank int `json:"rank"`
}

// serviceEdge counts the calls from one service to another: spans of To
// whose parent span, or whose linked producer span, belongs to From.
type serviceEdge struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Calls  int    `json:"calls"`
	Errors int    `json:"errors"` // calls whose child span has error status
	// Messaging counts the calls that were a producer → consumer hop,
	// through a parent link or a span link.
	Messaging int           `json:"messaging,omitempty"`
	P50       time.Duration `json:"p50_ns"` // of the child spans' durations
	P99       time.Duration `json:"p99_ns"`
}

// serviceGraph builds the service map over the stored traces. An edge
// A → B (A ≠ B) counts each span of B whose parent span, in the same
// trace, belongs to A; a consumer span whose link points to a stored
// producer span of A counts too (once, when the producer is also its
// parent). Services that only call themselves appear as nodes without
// edges.
func (s *store) serviceGraph() serviceGraph {
	type edgeKey struct{ from, to string }
	type edgeAcc struct {
		serviceEdge
		durations []time.Duration
	}
	nodes := make(map[string]*serviceNode)
	edges := make(map[edgeKey]*edgeAcc)
	addEdge := func(from *span, to *span) {
		if from.Service == to.Service {
			return
		}
		k := edgeKey{from.Service, to.Service}
		e := edges[k]
		if e == nil {
			e = &edgeAcc{serviceEdge: serviceEdge{From: from.Service, To: to.Service}}
			edges[k] = e
		}
		e.Calls++
		if to.isError() {
			e.Errors++
		}
		if from.Kind == "producer" && to.Kind == "consumer" {
			e.Messaging++
		}
		e.durations = append(e.durations, to.Duration)
	}

	s.mu.RLock()
	for _, t := range s.traces {
		for _, sp := range t.spans {
			n := nodes[sp.Service]
			if n == nil {
				n = &serviceNode{Name: sp.Service}
				nodes[sp.Service] = n
			}
			n.Spans++
			if sp.isError() {
				n.Errors++
			}
			var parent *span
			if i, ok := t.index[sp.ParentSpanID]; ok && !sp.ParentSpanID.IsZero() && sp.ParentSpanID != sp.SpanID {
				parent = t.spans[i]
				addEdge(parent, sp)
			}
			if sp.Kind != "consumer" {
				continue
			}
			for _, l := range sp.Links {
				lt := s.traces[l.TraceID]
				if lt == nil {
					continue
				}
				i, ok := lt.index[l.SpanID]
				if !ok {
					continue
				}
				if p := lt.spans[i]; p.Kind == "producer" && p != parent {
					addEdge(p, sp)
				}
			}
		}
	}
	s.mu.RUnlock()

	g := serviceGraph{Services: make([]serviceNode, 0, len(nodes)), Edges: make([]serviceEdge, 0, len(edges))}
	for _, e := range edges {
		slices.Sort(e.durations)
		e.P50, e.P99 = durationQuantile(e.durations, 0.50), durationQuantile(e.durations, 0.99)
		g.Edges = append(g.Edges, e.serviceEdge)
	}
	slices.SortFunc(g.Edges, func(a, b serviceEdge) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	for _, n := range nodes {
		g.Services = append(g.Services, *n)
	}
	slices.SortFunc(g.Services, func(a, b serviceNode) int { return cmp.Compare(a.Name, b.Name) })
	g.rank()
	return g
}

// durationQuantile returns the q-quantile of sorted by the nearest-rank
// method, or zero for no values.
func durationQuantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// rank sets each node's Rank: the longest path to it from a root. Roots
// are the nodes without callers, visited by name; a depth-first search
// from them, then from any node not yet reached (a cycle without a
// root), classifies edges, and back edges are left out so that every
// cycle is broken once.
func (g *serviceGraph) rank() {
	index := make(map[string]int, len(g.Services))
	for i, n := range g.Services {
		index[n.Name] = i
	}
	out := make([][]int, len(g.Services))
	callers := make([]int, len(g.Services))
	for _, e := range g.Edges {
		from, to := index[e.From], index[e.To]
		out[from] = append(out[from], to)
		callers[to]++
	}
	const (
		unseen = iota
		active
		done
	)
	state := make([]int, len(g.Services))
	var order []int // reverse postorder: a topological order of the DAG without back edges
	dag := make([][]int, len(g.Services))
	var visit func(int)
	visit = func(v int) {
		state[v] = active
		for _, w := range out[v] {
			switch state[w] {
			case active: // back edge: closes a cycle
				continue
			case unseen:
				visit(w)
			}
			dag[v] = append(dag[v], w)
		}
		state[v] = done
		order = append(order, v)
	}
	for v := range g.Services {
		if callers[v] == 0 && state[v] == unseen {
			visit(v)
		}
	}
	for v := range g.Services {
		if state[v] == unseen {
			visit(v)
		}
	}
	for i := len(order) - 1; i >= 0; i-- {
		v := order[i]
		for _, w := range dag[v] {
			g.Services[w].Rank = max(g.Services[w].Rank, g.Services[v].Rank+1)
		}
	}
}

// Service map drawing geometry, in SVG user units.
const (
	mapNodeWidth  = 170
	mapNodeHeight = 40
	mapColGap     = 170 // between columns, room for edge labels
	mapRowGap     = 34
	mapMargin     = 20
	mapNameRunes  = 22 // longer names are cut with an ellipsis
	// Edge labels are 11-unit text on a box this tall, about
	// mapLabelRune wide per character plus mapLabelPad on each side.
	mapLabelHeight = 16
	mapLabelRune   = 6.3
	mapLabelPad    = 4
)

// mapBox is an axis-aligned rectangle of the drawing.
type mapBox struct{ x, y, w, h float64 }

// overlaps reports whether b and o share more than a boundary.
func (b mapBox) overlaps(o mapBox) bool {
	return b.x < o.x+o.w && o.x < b.x+b.w && b.y < o.y+o.h && o.y < b.y+b.h
}

// placeLabel returns the box of a w-wide label centred at (cx, cy), moved
// down and then up in label-height steps until it overlaps none of taken
// (it gives up after a few tries and overlaps).
func placeLabel(cx, cy, w float64, taken []mapBox) mapBox {
	box := mapBox{cx - w/2, cy - mapLabelHeight/2, w, mapLabelHeight}
	for i := range 9 {
		try := box
		step := float64((i+1)/2) * (mapLabelHeight + 2)
		if i%2 == 0 {
			step = -step
		}
		try.y += step
		if !slices.ContainsFunc(taken, try.overlaps) {
			return try
		}
	}
	return box
}

// SVG draws the map as an <svg id="service-map"> element: one column per
// rank, services sorted by name within a column, an arrow per edge
// labelled with its calls, errors and p99. Services and edges with errors
// are drawn in the "err" class. Names are escaped and cut to a readable
// length (the full name is the node's tooltip); each node links to its
// service page.
func (g serviceGraph) SVG() template.HTML {
	type pos struct{ x, y float64 }
	cols := make(map[int][]string)
	maxRank, maxRows := 0, 0
	for _, n := range g.Services {
		cols[n.Rank] = append(cols[n.Rank], n.Name)
		maxRank = max(maxRank, n.Rank)
		maxRows = max(maxRows, len(cols[n.Rank]))
	}
	// Place column by column; within a column, order services by the
	// mean row of their callers in earlier columns (the barycenter
	// heuristic, which uncrosses most edges), then by name.
	callers := make(map[string][]string)
	for _, e := range g.Edges {
		callers[e.To] = append(callers[e.To], e.From)
	}
	at := make(map[string]pos, len(g.Services))
	rowOf := make(map[string]int, len(g.Services))
	for rank := 0; rank <= maxRank; rank++ {
		names := cols[rank]
		center := make(map[string]float64, len(names))
		for _, name := range names {
			sum, n := 0.0, 0
			for _, c := range callers[name] {
				if r, ok := rowOf[c]; ok {
					sum, n = sum+float64(r), n+1
				}
			}
			center[name] = math.Inf(1)
			if n > 0 {
				center[name] = sum / float64(n)
			}
		}
		slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(center[a], center[b]) })
		for row, name := range names {
			rowOf[name] = row
			at[name] = pos{
				x: mapMargin + float64(rank*(mapNodeWidth+mapColGap)),
				y: mapMargin + float64(row*(mapNodeHeight+mapRowGap)),
			}
		}
	}
	width := 2*mapMargin + (maxRank+1)*mapNodeWidth + maxRank*mapColGap
	height := 2*mapMargin + maxRows*mapNodeHeight + max(maxRows-1, 0)*mapRowGap + 20 // room for looping edges below

	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="service-map" class="service-map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" role="img" aria-label="Service map">`,
		width, height, width)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>` +
		`<marker id="arrow-err" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>`)
	if len(g.Services) == 0 {
		fmt.Fprintf(&b, `<text class="nodata" x="%d" y="%d">no spans stored</text></svg>`, mapMargin, mapMargin+14)
		return template.HTML(b.String())
	}

	// Each label sits on a box at the midpoint of its curve, which it
	// interrupts, so no curve runs through text; labels that would
	// overlap a node or an earlier label move along the gap.
	var taken []mapBox
	for _, p := range at {
		taken = append(taken, mapBox{p.x, p.y, mapNodeWidth, mapNodeHeight})
	}
	for _, e := range g.Edges {
		from, to := at[e.From], at[e.To]
		// Every edge is a cubic Bézier curve from (x1, y1) to (x2, y2)
		// with control points (c1x, c1y) and (c2x, c2y).
		var x1, y1, c1x, c1y, c2x, c2y, x2, y2 float64
		if to.x > from.x {
			// Forward: a gentle curve from the caller's right side to the
			// callee's left side.
			x1, y1 = from.x+mapNodeWidth, from.y+mapNodeHeight/2
			x2, y2 = to.x, to.y+mapNodeHeight/2
			mid := (x1 + x2) / 2
			c1x, c1y, c2x, c2y = mid, y1, mid, y2
		} else {
			// Backward or within a column: loop below, bottom to bottom.
			x1, y1 = from.x+mapNodeWidth/2+8, from.y+mapNodeHeight
			x2, y2 = to.x+mapNodeWidth/2-8, to.y+mapNodeHeight
			low := max(y1, y2) + mapRowGap*0.8
			c1x, c1y, c2x, c2y = x1, low, x2, low
		}
		d := fmt.Sprintf("M%s,%s C%s,%s %s,%s %s,%s", num(x1), num(y1), num(c1x), num(c1y), num(c2x), num(c2y), num(x2), num(y2))
		// The curve's point at t = 1/2.
		mx, my := (x1+3*c1x+3*c2x+x2)/8, (y1+3*c1y+3*c2y+y2)/8
		class, marker := "edge", "arrow"
		if e.Errors > 0 {
			class, marker = "edge err", "arrow-err"
		}
		if e.Messaging > 0 {
			class += " async"
		}
		label := fmt.Sprintf("%d", e.Calls)
		if e.Errors > 0 {
			label += fmt.Sprintf(" · %d err", e.Errors)
		}
		label += " · p99 " + formatDuration(e.P99)
		box := placeLabel(mx, my, float64(len([]rune(label)))*mapLabelRune+2*mapLabelPad, taken)
		taken = append(taken, box)
		tip := fmt.Sprintf("%s → %s: %d calls, %d errors, p50 %s, p99 %s", e.From, e.To, e.Calls, e.Errors, formatDuration(e.P50), formatDuration(e.P99))
		if e.Messaging > 0 {
			tip += fmt.Sprintf(", %d through messaging", e.Messaging)
		}
		fmt.Fprintf(&b, `<g class="%s"><title>%s</title><path d="%s" marker-end="url(#%s)"/>`+
			`<rect class="label" x="%s" y="%s" width="%s" height="%d" rx="3"/><text x="%s" y="%s" text-anchor="middle">%s</text></g>`,
			class, xmlEscape(tip), d, marker,
			num(box.x), num(box.y), num(box.w), mapLabelHeight,
			num(box.x+box.w/2), num(box.y+mapLabelHeight-4.5), xmlEscape(label))
	}

	for _, n := range g.Services {
		p := at[n.Name]
		class := "node"
		if n.Errors > 0 {
			class = "node err"
		}
		name := n.Name
		if name == "" {
			name = "(no service.name)"
		}
		if r := []rune(name); len(r) > mapNameRunes {
			name = string(r[:mapNameRunes-1]) + "…"
		}
		sub := fmt.Sprintf("%d span%s", n.Spans, plural(n.Spans))
		if n.Errors > 0 {
			sub += fmt.Sprintf(" · %d err", n.Errors)
		}
		fmt.Fprintf(&b, `<a href="/services/%s"><g class="%s"><title>%s</title><rect x="%s" y="%s" width="%d" height="%d" rx="5"/>`+
			`<text class="name" x="%s" y="%s">%s</text><text class="sub" x="%s" y="%s">%s</text></g></a>`,
			xmlEscape(url.PathEscape(n.Name)), class, xmlEscape(n.Name),
			num(p.x), num(p.y), mapNodeWidth, mapNodeHeight,
			num(p.x+8), num(p.y+16), xmlEscape(name),
			num(p.x+8), num(p.y+32), xmlEscape(sub))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// plural returns "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
