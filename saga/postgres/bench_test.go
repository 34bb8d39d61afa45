package postgres

import (
	"context"
	"strconv"
	"testing"

	"github.com/cairnhq/cairn/saga"
)

type benchData struct {
	ID string `json:"id"`
}

// BenchmarkStartWait measures a three-step saga (one step, a parallel
// group of two) persisted in PostgreSQL: three writes per instance (Create,
// and an Update per stage), and no read.
func BenchmarkStartWait(b *testing.B) {
	db := openDB(b)
	s, err := New(b.Context(), db)
	if err != nil {
		b.Fatal(err)
	}
	noop := func(context.Context, *benchData) error { return nil }
	def := saga.Definition[benchData]{Name: "bench", Stages: []saga.Stage[benchData]{
		{{Name: "a", Action: noop}}, {{Name: "b", Action: noop}, {Name: "c", Action: noop}},
	}}
	o, err := saga.New(s, []saga.Definition[benchData]{def})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	ctx := b.Context()
	i := 0
	for b.Loop() {
		id := strconv.Itoa(i)
		i++
		if _, err := o.Start(ctx, "bench", id, benchData{ID: id}); err != nil {
			b.Fatal(err)
		}
		if inst, err := o.Wait(ctx, id); err != nil || inst.Status != saga.StatusCompleted {
			b.Fatalf("Wait = %s, %v", inst.Status, err)
		}
	}
}
