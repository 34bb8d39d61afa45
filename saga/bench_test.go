package saga_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

// BenchmarkStartWait measures the orchestration overhead of a three-step
// saga (one step, a parallel group of two) on the in-memory store: Start,
// then Wait for completion.
func BenchmarkStartWait(b *testing.B) {
	noop := func(context.Context, *order) error { return nil }
	def := saga.Definition[order]{Name: "bench", Stages: []saga.Stage[order]{
		{{Name: "a", Action: noop}}, {{Name: "b", Action: noop}, {Name: "c", Action: noop}},
	}}
	o, err := saga.New(sagatest.NewMemStore(), []saga.Definition[order]{def})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	ctx := b.Context()
	i := 0
	for b.Loop() {
		id := strconv.Itoa(i)
		i++
		if _, err := o.Start(ctx, "bench", id, order{ID: id}); err != nil {
			b.Fatal(err)
		}
		if inst, err := o.Wait(ctx, id); err != nil || inst.Status != saga.StatusCompleted {
			b.Fatalf("Wait = %s, %v", inst.Status, err)
		}
	}
}
