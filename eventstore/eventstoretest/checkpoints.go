package eventstoretest

import (
	"strings"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
)

// checkCheckpoints checks [eventstore.Checkpoints] and
// [eventstore.Counter]: an unknown name loads as 0, a save replaces the
// last one (backwards too), names are independent, bad names and negative
// positions are refused, and CountAfter counts the events after a
// position up to its limit. It skips a store that implements neither.
func checkCheckpoints(t testing.TB, s eventstore.Store) {
	cp, isCP := s.(eventstore.Checkpoints)
	counter, isCounter := s.(eventstore.Counter)
	if !isCP && !isCounter {
		t.Skipf("%T implements neither eventstore.Checkpoints nor eventstore.Counter", s)
	}
	f := newFixture(t, s)
	ctx := f.ctx
	if isCP {
		a, b := f.id("relay-a"), f.id("relay-b")
		load := func(name string) eventstore.Position {
			t.Helper()
			pos, err := cp.LoadCheckpoint(ctx, name)
			if err != nil {
				t.Fatalf("LoadCheckpoint(%s) = %v", name, err)
			}
			return pos
		}
		if got := load(a); got != 0 {
			t.Errorf("LoadCheckpoint of an unknown name = %d, want 0", got)
		}
		for _, pos := range []eventstore.Position{42, 1 << 40, 7} {
			if err := cp.SaveCheckpoint(ctx, a, pos); err != nil {
				t.Fatalf("SaveCheckpoint(%s, %d) = %v", a, pos, err)
			}
			if got := load(a); got != pos {
				t.Errorf("after SaveCheckpoint(%d), LoadCheckpoint = %d", pos, got)
			}
		}
		if got := load(b); got != 0 {
			t.Errorf("LoadCheckpoint(%s) = %d after saving another name, want 0", b, got)
		}
		if err := cp.SaveCheckpoint(ctx, "", 1); err == nil {
			t.Error("SaveCheckpoint with an empty name succeeded")
		}
		if err := cp.SaveCheckpoint(ctx, strings.Repeat("n", eventstore.MaxIDLength+1), 1); err == nil {
			t.Error("SaveCheckpoint with an oversized name succeeded")
		}
		if err := cp.SaveCheckpoint(ctx, b, -1); err == nil {
			t.Error("SaveCheckpoint with a negative position succeeded")
		}
	}
	if isCounter {
		res, err := s.Append(ctx, f.stream("count"), eventstore.NoStream, f.events("c", 5)...)
		if err != nil {
			t.Fatalf("Append = %v", err)
		}
		all := f.readAll(0, 1000)
		var before eventstore.Position // the position before the five
		for _, e := range all {
			if e.Position < res.FirstPosition {
				before = e.Position
			}
		}
		for _, tc := range []struct {
			after eventstore.Position
			limit int64
			min   int64
			max   int64
		}{
			{before, 100, 5, 100}, // other checks' events may follow ours
			{res.FirstPosition, 100, 4, 100},
			{before, 3, 3, 3},
			{before, 0, 0, 0},
		} {
			n, err := counter.CountAfter(ctx, tc.after, tc.limit)
			if err != nil {
				t.Fatalf("CountAfter(%d, %d) = %v", tc.after, tc.limit, err)
			}
			if n < tc.min || n > tc.max {
				t.Errorf("CountAfter(%d, %d) = %d, want %d to %d", tc.after, tc.limit, n, tc.min, tc.max)
			}
		}
		n, err := counter.CountAfter(ctx, res.LastPosition, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range all {
			if e.Position > res.LastPosition {
				n--
			}
		}
		if n != 0 {
			t.Errorf("CountAfter(last position) counts %d events that ReadAll does not return", n)
		}
	}
}
