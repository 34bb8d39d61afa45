package shed

import (
	"context"
	"net/http"
	"testing"
)

func TestPriorityContext(t *testing.T) {
	if got := PriorityFrom(context.Background()); got != Critical {
		t.Errorf("PriorityFrom(empty) = %v, want critical", got)
	}
	for _, p := range []Priority{CriticalPlus, Critical, SheddablePlus, Sheddable} {
		if got := PriorityFrom(WithPriority(context.Background(), p)); got != p {
			t.Errorf("PriorityFrom(WithPriority(%v)) = %v", p, got)
		}
	}
	if got := PriorityFrom(WithPriority(context.Background(), Priority(7))); got != DefaultPriority {
		t.Errorf("PriorityFrom(invalid) = %v, want default", got)
	}
}

func TestPriorityHeader(t *testing.T) {
	for _, p := range []Priority{CriticalPlus, Critical, SheddablePlus, Sheddable} {
		h := http.Header{}
		SetHeader(h, p)
		got, ok := FromHeader(h)
		if got != p || !ok {
			t.Errorf("FromHeader(SetHeader(%v)) = %v, %v", p, got, ok)
		}
		if v := h.Get("x-cairn-priority"); v != p.String() {
			t.Errorf("header = %q, want %q", v, p.String())
		}
	}
	for _, v := range []string{"", "urgent", "3", "critical plus"} {
		h := http.Header{}
		if v != "" {
			h.Set(HeaderName, v)
		}
		if got, ok := FromHeader(h); got != DefaultPriority || ok {
			t.Errorf("FromHeader(%q) = %v, %v, want default, false", v, got, ok)
		}
	}
	h := http.Header{}
	h.Set(HeaderName, " CRITICAL_PLUS ")
	if got, ok := FromHeader(h); got != CriticalPlus || !ok {
		t.Errorf("FromHeader(gRPC spelling) = %v, %v", got, ok)
	}
}

func TestPriorityString(t *testing.T) {
	tests := map[Priority]string{
		CriticalPlus: "critical_plus", Critical: "critical", SheddablePlus: "sheddable_plus",
		Sheddable: "sheddable", Priority(5): "Priority(5)", Priority(-3): "Priority(-3)",
	}
	for p, want := range tests {
		if got := p.String(); got != want {
			t.Errorf("Priority(%d).String() = %q, want %q", int(p), got, want)
		}
	}
	if MetadataKey != "cairn-priority" || GRPCCodeName != "RESOURCE_EXHAUSTED" {
		t.Error("wire constants changed")
	}
}
