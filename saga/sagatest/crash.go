package sagatest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/saga"
)

// crashData is the data of the crash check's saga. The members of its
// parallel group write their own fields.
type crashData struct {
	ID     string `json:"id"`
	First  bool   `json:"first"`
	Second bool   `json:"second"`
	Third  bool   `json:"third"`
}

// tracker records which orchestrator runs which instance's steps, and
// catches two orchestrators running one instance at once.
type tracker struct {
	mu         sync.Mutex
	inflight   map[string]map[string]int // instance → orchestrator → running steps
	runs       map[string]int            // "orchestrator/instance/step" → runs
	violations []string
}

func (tr *tracker) enter(orch, id, step string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.inflight[id] == nil {
		tr.inflight[id] = make(map[string]int)
	}
	for other, n := range tr.inflight[id] {
		if other != orch && n > 0 {
			tr.violations = append(tr.violations, fmt.Sprintf("instance %s: %s runs step %s while %s runs %d steps", id, orch, step, other, n))
		}
	}
	tr.inflight[id][orch]++
	tr.runs[orch+"/"+id+"/"+step]++
}

func (tr *tracker) exit(orch, id string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.inflight[id][orch]--
}

// checkCrashTakeover runs [CrashTakeover] with both orchestrators on s.
func checkCrashTakeover(t testing.TB, s saga.Store) { CrashTakeover(t, s, s) }

// CrashTakeover runs two orchestrators, a on sa and b on sb, two stores on
// one database (as two processes would have) or the same store twice: a
// starts instances and crashes (closes without releasing its leases) while
// every instance is in its first step; b, recovering, must take every
// instance over after its lease expires, finish it, and never run an
// instance while a does. It takes a few seconds.
func CrashTakeover(t testing.TB, sa, sb saga.Store) {
	ctx := t.Context()
	p := prefix()
	const n = 12
	const lease = 2 * time.Second // long enough that a loaded machine renews in time
	tr := &tracker{inflight: make(map[string]map[string]int), runs: make(map[string]int)}
	gate := make(chan struct{}) // closed after the crash: the first step then ends at once
	entered := make(chan string, 2*n)
	mk := func(orch string) saga.Definition[crashData] {
		step := func(name string, set func(*crashData)) saga.Step[crashData] {
			return saga.Step[crashData]{Name: name, Action: func(ctx context.Context, d *crashData) error {
				tr.enter(orch, d.ID, name)
				defer tr.exit(orch, d.ID)
				if name == "first" {
					entered <- orch + "/" + d.ID
					select {
					case <-gate:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				set(d)
				return nil
			}}
		}
		return saga.Definition[crashData]{Name: p + "crash", Stages: []saga.Stage[crashData]{
			{step("first", func(d *crashData) { d.First = true })},
			{step("second", func(d *crashData) { d.Second = true }), step("third", func(d *crashData) { d.Third = true })},
		}}
	}
	opts := []saga.Option{saga.WithLease(lease), saga.WithPollInterval(20 * time.Millisecond)}
	a, err := saga.New(sa, []saga.Definition[crashData]{mk("a")}, append(opts, saga.WithOwner(p+"a"))...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b, err := saga.New(sb, []saga.Definition[crashData]{mk("b")}, append(opts, saga.WithOwner(p+"b"))...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { b.Run(runCtx) })
	defer func() {
		stopRun()
		wg.Wait()
		a.Close()
		b.Close()
	}()

	for i := range n {
		id := fmt.Sprintf("%s%02d", p, i)
		if _, err := a.Start(ctx, p+"crash", id, crashData{ID: id}); err != nil {
			t.Fatalf("Start(%q): %v", id, err)
		}
	}
	timeout := time.After(waitFor)
	for range n {
		select {
		case who := <-entered:
			if who[0] != 'a' {
				t.Errorf("%s entered the first step before the crash", who)
			}
		case <-timeout:
			t.Fatalf("the instances did not all reach their first step in %v", waitFor)
		}
	}
	a.Close() // the crash: its steps are interrupted, its leases left to expire
	close(gate)

	wctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	for i := range n {
		id := fmt.Sprintf("%s%02d", p, i)
		inst, err := b.Wait(wctx, id)
		if err != nil {
			t.Fatalf("Wait(%q): %v (status %s, owner %s)", id, err, inst.Status, inst.Owner)
		}
		d, err := b.Data(inst)
		if err != nil {
			t.Fatal(err)
		}
		if inst.Status != saga.StatusCompleted || inst.Owner != p+"b" || !d.First || !d.Second || !d.Third {
			t.Errorf("instance %s: status %s, owner %s, data %+v; want completed by %sb with every step's mark", id, inst.Status, inst.Owner, d, p)
		}
		if got := inst.Steps[0].Attempts; got != 2 {
			t.Errorf("instance %s: first step ran %d times, want 2 (once in each orchestrator)", id, got)
		}
		tr.mu.Lock()
		for _, step := range []string{"first", "second", "third"} {
			if got := tr.runs["b/"+id+"/"+step]; got != 1 {
				t.Errorf("instance %s: b ran step %s %d times, want 1", id, step, got)
			}
		}
		if got := tr.runs["a/"+id+"/second"]; got != 0 {
			t.Errorf("instance %s: a ran step second after it crashed", id)
		}
		tr.mu.Unlock()
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, v := range tr.violations {
		t.Error(v)
	}
}
