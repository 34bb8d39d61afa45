package console

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// withKind sets a span's kind, error status and duration for graph tests.
func withKind(sp *span, kind string, dur time.Duration, isErr bool) *span {
	sp.Kind, sp.Duration = kind, dur
	sp.End = sp.Start.Add(dur)
	if isErr {
		sp.Status.Code = "error"
	}
	return sp
}

func TestServiceGraph(t *testing.T) {
	s := newStore(1000, 10, 10)
	ms := time.Millisecond
	// Trace 1: gateway -> order (twice, one error) -> payment; order calls
	// itself (no edge).
	// Trace 2: a cycle a -> b -> a.
	// Trace 3: order produces a message; the consumer of billing is in
	// trace 4 and points back with a span link; in trace 3 a consumer of
	// mailer is a child of the producer and also links to it (one hop,
	// not two).
	producer := withKind(mkSpan("order", 3, 1, 0, 0), "producer", 1*ms, false)
	linked := withKind(mkSpan("billing", 4, 1, 0, 5*ms), "consumer", 7*ms, false)
	linked.Links = []link{{TraceID: tid(3), SpanID: sid(1)}}
	child := withKind(mkSpan("mailer", 3, 2, 1, 2*ms), "consumer", 3*ms, false)
	child.Links = []link{{TraceID: tid(3), SpanID: sid(1)}}
	s.addSpans([]*span{
		withKind(mkSpan("gateway", 1, 1, 0, 0), "server", 50*ms, false),
		withKind(mkSpan("order", 1, 2, 1, 0), "server", 10*ms, false),
		withKind(mkSpan("order", 1, 3, 1, 0), "server", 30*ms, true),
		withKind(mkSpan("order", 1, 4, 3, 0), "internal", 1*ms, false),
		withKind(mkSpan("payment", 1, 5, 4, 0), "server", 20*ms, false),
		withKind(mkSpan("a", 2, 1, 0, 0), "server", 9*ms, false),
		withKind(mkSpan("b", 2, 2, 1, 0), "server", 8*ms, false),
		withKind(mkSpan("a", 2, 3, 2, 0), "server", 7*ms, false),
		producer, child, linked,
		// A link to a span that is not stored adds nothing.
		func() *span {
			sp := withKind(mkSpan("billing", 5, 1, 0, 0), "consumer", ms, false)
			sp.Links = []link{{TraceID: tid(9), SpanID: sid(9)}}
			return sp
		}(),
	}, 0)

	g := s.serviceGraph()
	wantEdges := []serviceEdge{
		{From: "a", To: "b", Calls: 1, P50: 8 * ms, P99: 8 * ms},
		{From: "b", To: "a", Calls: 1, P50: 7 * ms, P99: 7 * ms},
		{From: "gateway", To: "order", Calls: 2, Errors: 1, P50: 10 * ms, P99: 30 * ms},
		{From: "order", To: "billing", Calls: 1, Messaging: 1, P50: 7 * ms, P99: 7 * ms},
		{From: "order", To: "mailer", Calls: 1, Messaging: 1, P50: 3 * ms, P99: 3 * ms},
		{From: "order", To: "payment", Calls: 1, P50: 20 * ms, P99: 20 * ms},
	}
	if diff := cmp.Diff(wantEdges, g.Edges); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
	wantNodes := []serviceNode{
		{Name: "a", Spans: 2, Rank: 0},
		{Name: "b", Spans: 1, Rank: 1},
		{Name: "billing", Spans: 2, Rank: 2},
		{Name: "gateway", Spans: 1, Rank: 0},
		{Name: "mailer", Spans: 1, Rank: 2},
		{Name: "order", Spans: 4, Errors: 1, Rank: 1},
		{Name: "payment", Spans: 1, Rank: 2},
	}
	if diff := cmp.Diff(wantNodes, g.Services); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
}

func TestServiceGraphRank(t *testing.T) {
	node := func(names ...string) []serviceNode {
		var out []serviceNode
		for _, n := range names {
			out = append(out, serviceNode{Name: n})
		}
		return out
	}
	tests := []struct {
		name  string
		nodes []serviceNode
		edges [][2]string
		want  map[string]int
	}{
		{"chain", node("a", "b", "c"), [][2]string{{"a", "b"}, {"b", "c"}}, map[string]int{"a": 0, "b": 1, "c": 2}},
		{"longest path wins", node("a", "b", "c"), [][2]string{{"a", "b"}, {"b", "c"}, {"a", "c"}}, map[string]int{"a": 0, "b": 1, "c": 2}},
		{"cycle without root", node("a", "b"), [][2]string{{"a", "b"}, {"b", "a"}}, map[string]int{"a": 0, "b": 1}},
		{"cycle below root", node("a", "b", "c"), [][2]string{{"a", "b"}, {"b", "c"}, {"c", "b"}}, map[string]int{"a": 0, "b": 1, "c": 2}},
		{"isolated", node("x"), nil, map[string]int{"x": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := serviceGraph{Services: tt.nodes}
			for _, e := range tt.edges {
				g.Edges = append(g.Edges, serviceEdge{From: e[0], To: e[1], Calls: 1})
			}
			g.rank()
			got := make(map[string]int)
			for _, n := range g.Services {
				got[n.Name] = n.Rank
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ranks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceGraphSVG(t *testing.T) {
	g := serviceGraph{
		Services: []serviceNode{
			{Name: `<script>alert("x")</script>`, Spans: 3, Errors: 1},
			{Name: "b\x01/c?d", Spans: 1, Rank: 1},
		},
		Edges: []serviceEdge{
			{From: `<script>alert("x")</script>`, To: "b\x01/c?d", Calls: 4, Errors: 1, P99: time.Millisecond},
			{From: "b\x01/c?d", To: `<script>alert("x")</script>`, Calls: 1, Messaging: 1},
		},
	}
	svg := string(g.SVG())
	checkXML(t, svg)
	for _, want := range []string{`id="service-map"`, `class="node err"`, `class="edge err"`, `class="edge async"`, "&lt;script&gt;", `href="/services/b%01%2Fc%3Fd"`, "4 · 1 err · p99 1ms"} {
		if !strings.Contains(svg, want) {
			t.Errorf("service map SVG lacks %q:\n%s", want, svg)
		}
	}
	if strings.Contains(svg, "<script") {
		t.Errorf("service map SVG contains an unescaped name:\n%s", svg)
	}
	checkXML(t, string(serviceGraph{}.SVG()))
}

// checkXML fails unless s is one well-formed XML element.
func checkXML(t *testing.T, s string) {
	t.Helper()
	var v struct {
		XMLName xml.Name
	}
	if err := xml.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, s)
	}
	if v.XMLName.Local != "svg" {
		t.Errorf("root element %q, want svg", v.XMLName.Local)
	}
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		if _, err := d.Token(); err != nil {
			if err != io.EOF {
				t.Fatalf("XML token: %v", err)
			}
			return
		}
	}
}

// BenchmarkServiceGraph builds the map over a full default store: 10,000
// traces of 10 spans across 5 services.
func BenchmarkServiceGraph(b *testing.B) {
	s := newStore(DefaultMaxSpans, 10, 10)
	services := []string{"gateway", "order", "payment", "stock", "mailer"}
	var spans []*span
	for tr := range 10_000 {
		var id traceID
		id[0], id[1], id[15] = byte(tr>>8), byte(tr), 1
		for i := range 10 {
			sp := &span{TraceID: id, Service: services[i%len(services)], Name: "op", Kind: "server",
				Start: testEpoch, End: testEpoch.Add(time.Millisecond), Duration: time.Millisecond}
			sp.SpanID[7] = byte(i + 1)
			if i > 0 {
				sp.ParentSpanID[7] = byte(i)
			}
			spans = append(spans, sp)
		}
	}
	s.addSpans(spans, 0)
	for b.Loop() {
		if g := s.serviceGraph(); len(g.Edges) != 5 {
			b.Fatalf("%d edges, want 5", len(g.Edges))
		}
	}
}

// TestServiceGraphSVGLabels: each edge label sits on a box that holds its
// text, overlaps no node and no other label, and, unless it had to move,
// covers the midpoint of its own curve (so the curve never runs through
// the text, only behind the box).
func TestServiceGraphSVGLabels(t *testing.T) {
	g := serviceGraph{
		Services: []serviceNode{
			{Name: "frontend", Spans: 1}, {Name: "inventory", Spans: 3}, {Name: "search", Spans: 1},
			{Name: "order", Spans: 2, Rank: 1}, {Name: "payment", Spans: 2, Errors: 1, Rank: 1},
			{Name: "billing", Spans: 1, Rank: 2},
		},
		Edges: []serviceEdge{
			{From: "frontend", To: "order", Calls: 2, P99: 30 * time.Millisecond},
			{From: "frontend", To: "payment", Calls: 1, Errors: 1, P99: 60 * time.Millisecond},
			{From: "inventory", To: "order", Calls: 1234, Errors: 56, P99: 1234 * time.Millisecond},
			{From: "search", To: "payment", Calls: 7, P99: time.Second},
			{From: "order", To: "billing", Calls: 1, Messaging: 1, P99: 22 * time.Millisecond},
			{From: "billing", To: "frontend", Calls: 3, P99: time.Millisecond}, // a loop back
		},
	}
	svg := string(g.SVG())
	checkXML(t, svg)
	num := func(m map[string]string, k string) float64 {
		f, err := strconv.ParseFloat(m[k], 64)
		if err != nil {
			t.Fatalf("attribute %s=%q: %v", k, m[k], err)
		}
		return f
	}
	boxOf := func(m map[string]string) mapBox {
		return mapBox{num(m, "x"), num(m, "y"), num(m, "width"), num(m, "height")}
	}
	var nodes, labels []mapBox
	onCurve := 0
	for _, r := range svgElements(t, svg, "rect") {
		if r["class"] == "label" {
			labels = append(labels, boxOf(r))
		} else {
			nodes = append(nodes, boxOf(r))
		}
	}
	paths := svgElements(t, svg, "path")[2:] // after the two arrowheads
	texts := svgElements(t, svg, "text")[:len(g.Edges)]
	if len(labels) != len(g.Edges) || len(paths) != len(g.Edges) || len(nodes) != len(g.Services) {
		t.Fatalf("%d label boxes, %d paths, %d nodes; want %d, %d, %d",
			len(labels), len(paths), len(nodes), len(g.Edges), len(g.Edges), len(g.Services))
	}
	for i, box := range labels {
		e := g.Edges[i]
		for _, n := range nodes {
			if box.overlaps(n) {
				t.Errorf("label of %s → %s %v overlaps node %v", e.From, e.To, box, n)
			}
		}
		for j, other := range labels[:i] {
			if box.overlaps(other) {
				t.Errorf("label of %s → %s %v overlaps the label of %s → %s %v", e.From, e.To, box, g.Edges[j].From, g.Edges[j].To, other)
			}
		}
		if x, y := num(texts[i], "x"), num(texts[i], "y"); x != box.x+box.w/2 || y < box.y || y > box.y+box.h {
			t.Errorf("label text of %s → %s at (%v, %v), outside its box %v", e.From, e.To, x, y, box)
		}
		var p [8]float64
		if _, err := fmt.Sscanf(paths[i]["d"], "M%f,%f C%f,%f %f,%f %f,%f", &p[0], &p[1], &p[2], &p[3], &p[4], &p[5], &p[6], &p[7]); err != nil {
			t.Fatalf("path %q: %v", paths[i]["d"], err)
		}
		// The box is centred on the midpoint, or moved up or down by at
		// most four steps of placeLabel.
		mx, my := (p[0]+3*p[2]+3*p[4]+p[6])/8, (p[1]+3*p[3]+3*p[5]+p[7])/8
		if dy := math.Abs(box.y + box.h/2 - my); math.Abs(box.x+box.w/2-mx) > 0.01 || dy > 4*(mapLabelHeight+2)+0.01 {
			t.Errorf("label of %s → %s %v is centred %v units from its curve's midpoint (%v, %v), want straight above or below, at most %d",
				e.From, e.To, box, dy, mx, my, 4*(mapLabelHeight+2))
		} else if dy < 0.01 {
			onCurve++
		}
	}
	if onCurve < len(g.Edges)-1 {
		t.Errorf("%d of %d labels sit on their curve's midpoint, want all but one at most", onCurve, len(g.Edges))
	}
}
