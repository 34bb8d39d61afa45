package choreo_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/inproc"
	"github.com/cairnhq/cairn/saga/choreo"
)

// world is the three services and the tracker of orderSaga, each with a
// database of its own.
type world struct {
	saga    *choreo.Saga
	tracker *choreo.Tracker
	effects map[string]*effects // by participant
}

// db returns a participant's database and its dialect.
type dbFunc func(t testing.TB, name string) (*sql.DB, cqrs.Dialect)

func sqliteDBs(t testing.TB, name string) (*sql.DB, cqrs.Dialect) {
	return sqliteDB(t, name), cqrs.SQLite
}

// fast retries failed deliveries at once.
var fast = messaging.SubscribeConfig{Backoff: func(int) time.Duration { return time.Millisecond }}

// start subscribes the participants of s and a tracker, on pub and sub.
// A step fails permanently for the instances whose ID contains
// "fail-<step>".
func start(t *testing.T, s *choreo.Saga, pub messaging.Publisher, sub messaging.Subscriber, dbs dbFunc, mp *sdkmetric.MeterProvider) *world {
	t.Helper()
	ctx := t.Context()
	w := &world{saga: s, effects: map[string]*effects{}}
	for _, st := range s.Steps {
		e, ok := w.effects[st.Participant]
		if !ok {
			db, d := dbs(t, st.Participant)
			e = newEffects(t, db, d)
			w.effects[st.Participant] = e
		}
		fail := func(id string) bool { return strings.Contains(id, "fail-"+st.Name) }
		p, err := choreo.NewParticipant(ctx, s, st.Name, e.fn(st.Name, fail), choreo.Options{Publisher: pub, DB: e.db, Dialect: e.d})
		if err != nil {
			t.Fatalf("NewParticipant(%s) = %v", st.Name, err)
		}
		subn, err := p.Subscribe(ctx, sub, fast)
		if err != nil {
			t.Fatalf("Subscribe(%s) = %v", st.Name, err)
		}
		t.Cleanup(func() { _ = subn.Close() })
	}
	db, d := dbs(t, "tracker")
	opts := choreo.TrackerOptions{Dialect: d}
	if mp != nil {
		opts.MeterProvider = mp
	}
	tr, err := choreo.NewTracker(ctx, db, s, opts)
	if err != nil {
		t.Fatalf("NewTracker = %v", err)
	}
	subn, err := tr.Subscribe(ctx, sub, fast)
	if err != nil {
		t.Fatalf("tracker Subscribe = %v", err)
	}
	t.Cleanup(func() { _ = subn.Close() })
	w.tracker = tr
	return w
}

// flowCase is an instance, the step that fails in it, and what the
// tracker and the participants' databases must show at its end.
type flowCase struct {
	id        string
	status    choreo.Status
	stage     string
	lastEvent string
	events    []string       // sorted, without prefix
	ran       map[string]int // step → effects
}

var flowCases = []flowCase{
	{"o-happy", choreo.StatusCompleted, "ship", "shipment.scheduled",
		[]string{"order.placed", "payment.charged", "shipment.scheduled", "stock.reserved"},
		map[string]int{"reserve": 1, "charge": 1, "ship": 1, "refund": 0, "release": 0}},
	{"o-fail-ship", choreo.StatusCompensated, "release", "stock.released",
		[]string{"order.placed", "payment.charged", "payment.refunded", "shipment.failed", "stock.released", "stock.reserved"},
		map[string]int{"reserve": 1, "charge": 1, "ship": 0, "refund": 1, "release": 1}},
	{"o-fail-charge", choreo.StatusCompensated, "release", "stock.released",
		[]string{"order.placed", "payment.failed", "stock.released", "stock.reserved"},
		map[string]int{"reserve": 1, "charge": 0, "ship": 0, "refund": 0, "release": 1}},
	{"o-fail-reserve", choreo.StatusFailed, "reserve", "stock.rejected",
		[]string{"order.placed", "stock.rejected"},
		map[string]int{"reserve": 0, "charge": 0, "ship": 0, "refund": 0, "release": 0}},
}

// checkFlows starts every flowCase and checks its end.
func checkFlows(t *testing.T, w *world, pub messaging.Publisher, prefix string) {
	t.Helper()
	for _, c := range flowCases {
		if err := w.saga.Publish(t.Context(), pub, prefix+c.id, []byte(`{"total":42}`)); err != nil {
			t.Fatalf("Publish(%s) = %v", c.id, err)
		}
	}
	stepOwner := map[string]string{}
	for _, st := range w.saga.Steps {
		stepOwner[st.Name] = st.Participant
	}
	for _, c := range flowCases {
		t.Run(c.id, func(t *testing.T) {
			id := prefix + c.id
			in := waitFinal(t, w.tracker, id, len(c.events))
			got := subjects(in.History)
			for i := range got {
				got[i] = strings.TrimPrefix(got[i], prefix)
			}
			slices.Sort(got)
			if in.Status != c.status || in.Stage != c.stage || in.LastEvent != prefix+c.lastEvent || in.Stuck {
				t.Errorf("instance = %s at %s after %s (stuck %v), want %s at %s after %s", in.Status, in.Stage, in.LastEvent, in.Stuck, c.status, c.stage, prefix+c.lastEvent)
			}
			if diff := cmp.Diff(c.events, got); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
			if in.StartedAt.IsZero() || in.UpdatedAt.Before(in.StartedAt) {
				t.Errorf("StartedAt %v, UpdatedAt %v", in.StartedAt, in.UpdatedAt)
			}
			for step, want := range c.ran {
				if n := w.effects[stepOwner[step]].count(t, step, id); n != want {
					t.Errorf("%s ran %d times, want %d", step, n, want)
				}
			}
		})
	}
}

func TestFlowsInproc(t *testing.T) {
	b := inproc.NewBroker()
	pub := inproc.NewPublisher(b, inproc.Options{})
	defer pub.Close()
	sub := inproc.NewSubscriber(b, inproc.Options{})
	defer sub.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	w := start(t, orderSaga(""), pub, sub, sqliteDBs, mp)
	checkFlows(t, w, pub, "")

	list, err := w.tracker.List(t.Context(), choreo.Filter{Status: choreo.StatusCompensated})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range list {
		ids = append(ids, in.ID)
	}
	slices.Sort(ids)
	if want := []string{"o-fail-charge", "o-fail-ship"}; !slices.Equal(ids, want) {
		t.Errorf("List(compensated) = %v, want %v", ids, want)
	}
	if all, err := w.tracker.List(t.Context(), choreo.Filter{Limit: 2}); err != nil || len(all) != 2 {
		t.Errorf("List(limit 2) = %d instances, %v; want 2", len(all), err)
	}

	want := map[string]int64{choreo.StartedMetricName: 4, choreo.CompletedMetricName: 1, choreo.CompensatedMetricName: 2, choreo.FailedMetricName: 1}
	if diff := cmp.Diff(want, counters(t, reader)); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

// counters returns the sums of the package's counters.
func counters(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != choreo.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					out[m.Name] += dp.Value
				}
			}
		}
	}
	return out
}

// delivery returns a delivery of subject for the instance id.
func delivery(msgID, subject, id string) messaging.Delivery {
	return messaging.Delivery{Attempt: 1, Message: messaging.Message{ID: msgID, Subject: subject, Key: id,
		Header: map[string]string{choreo.HeaderSagaID: id, choreo.HeaderSaga: "order"}}}
}

// The tracker's state after every event of a compensated instance, a
// duplicate and a late event included.
func TestTrackerSteps(t *testing.T) {
	ctx := t.Context()
	tr, err := choreo.NewTracker(ctx, sqliteDB(t, "tracker"), orderSaga(""), choreo.TrackerOptions{Dialect: cqrs.SQLite})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		msgID, subject string
		status         choreo.Status
		stage, last    string
		history        int
	}{
		{"m1", "order.placed", choreo.StatusRunning, "reserve", "order.placed", 1},
		{"m2", "stock.reserved", choreo.StatusRunning, "charge", "stock.reserved", 2},
		{"m2", "stock.reserved", choreo.StatusRunning, "charge", "stock.reserved", 2}, // duplicate
		{"m3", "payment.charged", choreo.StatusRunning, "ship", "payment.charged", 3},
		{"m4", "shipment.failed", choreo.StatusCompensating, "refund", "shipment.failed", 4},
		{"m5", "payment.refunded", choreo.StatusCompensating, "release", "payment.refunded", 5},
		{"m6", "stock.released", choreo.StatusCompensated, "release", "stock.released", 6},
		{"m7", "payment.charged", choreo.StatusCompensated, "release", "stock.released", 7}, // late
	}
	for i, s := range steps {
		if err := tr.Handle(ctx, delivery(s.msgID, s.subject, "o-1")); err != nil {
			t.Fatalf("step %d: Handle(%s) = %v", i, s.subject, err)
		}
		in, err := tr.Get(ctx, "o-1")
		if err != nil {
			t.Fatalf("step %d: Get = %v", i, err)
		}
		if in.Status != s.status || in.Stage != s.stage || in.LastEvent != s.last || len(in.History) != s.history {
			t.Errorf("after %s %s: %s at %s after %s, %d events; want %s at %s after %s, %d events",
				s.msgID, s.subject, in.Status, in.Stage, in.LastEvent, len(in.History), s.status, s.stage, s.last, s.history)
		}
	}
	if _, err := tr.Get(ctx, "nope"); !errors.Is(err, choreo.ErrNotFound) {
		t.Errorf("Get(nope) = %v, want ErrNotFound", err)
	}
	if err := tr.Handle(ctx, delivery("m8", "other.event", "o-1")); !messaging.IsPermanent(err) {
		t.Errorf("Handle(other.event) = %v, want a permanent error", err)
	}
	d := delivery("m9", "order.placed", "")
	if err := tr.Handle(ctx, d); !messaging.IsPermanent(err) || !errors.Is(err, choreo.ErrNoSagaID) {
		t.Errorf("Handle without saga ID = %v, want a permanent ErrNoSagaID", err)
	}
}

// A message delivered twice to a participant with an inbox has one
// effect, and emits the same event twice (the broker and the next
// inboxes drop the copy). An ordinary error rolls back and emits nothing.
func TestParticipantDuplicates(t *testing.T) {
	ctx := t.Context()
	s := orderSaga("")
	b := inproc.NewBroker(inproc.WithDuplicateWindow(0))
	inner := inproc.NewPublisher(b, inproc.Options{})
	defer inner.Close()
	pub := &recordingPublisher{Publisher: inner}
	db := sqliteDB(t, "payment")
	e := newEffects(t, db, cqrs.SQLite)
	transient := true
	fn := e.fn("charge", nil)
	flaky := func(ctx context.Context, tx *sql.Tx, ev choreo.Event) ([]byte, error) {
		if ev.SagaID == "o-flaky" && transient {
			transient = false
			if _, err := fn(ctx, tx, ev); err != nil { // an effect, rolled back
				return nil, err
			}
			return nil, errors.New("database busy")
		}
		return fn(ctx, tx, ev)
	}
	p, err := choreo.NewParticipant(ctx, s, "charge", flaky, choreo.Options{Publisher: pub, DB: db, Dialect: cqrs.SQLite})
	if err != nil {
		t.Fatal(err)
	}
	d := delivery("m1", "stock.reserved", "o-1")
	for i := range 2 {
		if err := p.Handle(ctx, d); err != nil {
			t.Fatalf("Handle #%d = %v", i+1, err)
		}
	}
	if n := e.count(t, "charge", "o-1"); n != 1 {
		t.Errorf("charge ran %d times for a message delivered twice, want 1", n)
	}
	got := pub.messages()
	if len(got) != 2 || got[0].ID != got[1].ID || got[0].Subject != "payment.charged" || got[1].Subject != got[0].Subject ||
		string(got[1].Data) != string(got[0].Data) || got[0].Header[choreo.HeaderSagaID] != "o-1" || got[0].Key != "o-1" {
		t.Errorf("published %+v, want payment.charged for o-1 twice with one ID", got)
	}

	fd := delivery("m2", "stock.reserved", "o-flaky")
	if err := p.Handle(ctx, fd); err == nil || messaging.IsPermanent(err) {
		t.Errorf("Handle with a transient error = %v, want a retryable error", err)
	}
	if n := e.count(t, "charge", "o-flaky"); n != 0 || len(pub.messages()) != 2 {
		t.Errorf("after a transient error: %d effects, %d messages; want 0 and 2", n, len(pub.messages()))
	}
	if err := p.Handle(ctx, fd); err != nil {
		t.Fatalf("Handle again = %v", err)
	}
	if n := e.count(t, "charge", "o-flaky"); n != 1 {
		t.Errorf("after the retry: %d effects, want 1", n)
	}
	if err := p.Handle(ctx, delivery("m3", "stock.reserved", "")); !messaging.IsPermanent(err) || !errors.Is(err, choreo.ErrNoSagaID) {
		t.Errorf("Handle without saga ID = %v, want a permanent ErrNoSagaID", err)
	}
}

// An instance without events for StuckAfter is marked stuck, once, and
// its next event clears the mark; final instances are never stuck.
func TestStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer mp.Shutdown(context.Background())
		db := sqliteDB(t, "tracker")
		tr, err := choreo.NewTracker(ctx, db, orderSaga(""), choreo.TrackerOptions{Dialect: cqrs.SQLite, StuckAfter: time.Minute, MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		handle := func(msgID, subject, id string) {
			t.Helper()
			if err := tr.Handle(ctx, delivery(msgID, subject, id)); err != nil {
				t.Fatalf("Handle(%s) = %v", subject, err)
			}
		}
		handle("a1", "order.placed", "slow")
		handle("b1", "order.placed", "done")
		handle("b2", "stock.rejected", "done")
		time.Sleep(59 * time.Second)
		if n, err := tr.CheckStuck(ctx); n != 0 || err != nil {
			t.Errorf("CheckStuck after 59s = %d, %v; want 0", n, err)
		}
		time.Sleep(2 * time.Second)
		if n, err := tr.CheckStuck(ctx); n != 1 || err != nil {
			t.Errorf("CheckStuck after 61s = %d, %v; want 1", n, err)
		}
		if n, err := tr.CheckStuck(ctx); n != 0 || err != nil {
			t.Errorf("CheckStuck again = %d, %v; want 0 (already marked)", n, err)
		}
		stuck, err := tr.List(ctx, choreo.Filter{StuckOnly: true})
		if err != nil || len(stuck) != 1 || stuck[0].ID != "slow" || !stuck[0].Stuck {
			t.Errorf("List(stuck) = %+v, %v; want slow", stuck, err)
		}
		handle("a2", "stock.reserved", "slow")
		if in, err := tr.Get(ctx, "slow"); err != nil || in.Stuck {
			t.Errorf("after an event: %+v, %v; want not stuck", in, err)
		}

		// Run checks every 30s.
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- tr.Run(runCtx) }()
		time.Sleep(91 * time.Second)
		synctest.Wait()
		if in, err := tr.Get(ctx, "slow"); err != nil || !in.Stuck {
			t.Errorf("after 91s of Run: %+v, %v; want stuck", in, err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		if got := counters(t, reader)[choreo.StuckMetricName]; got != 2 {
			t.Errorf("%s = %d, want 2", choreo.StuckMetricName, got)
		}
		_ = db.Close()
	})
}

// Every participant's span, compensations included, is in the trace the
// instance's root span started.
func TestOneTracePerInstance(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	b := inproc.NewBroker()
	pub := inproc.NewPublisher(b, inproc.Options{TracerProvider: tp})
	defer pub.Close()
	sub := inproc.NewSubscriber(b, inproc.Options{TracerProvider: tp})
	defer sub.Close()
	s := orderSaga("")
	s.TracerProvider = tp
	w := start(t, s, pub, sub, sqliteDBs, nil)
	if err := s.Publish(t.Context(), pub, "o-fail-ship", nil); err != nil {
		t.Fatal(err)
	}
	waitFinal(t, w.tracker, "o-fail-ship", 6)

	// The participants' spans and the tracker's delivery spans end
	// after the tracker has committed: poll until they have.
	want := []string{"choreo order", "choreo order charge", "choreo order refund", "choreo order release", "choreo order reserve", "choreo order ship"}
	deadline := time.Now().Add(20 * time.Second)
	var (
		spans    []sdktrace.ReadOnlySpan
		names    []string
		statuses map[string]trace.TraceID // status → trace of the span with its event
	)
	for {
		spans, names, statuses = nil, nil, map[string]trace.TraceID{}
		for _, sp := range rec.Ended() {
			if strings.HasPrefix(sp.Name(), "choreo ") {
				spans = append(spans, sp)
				names = append(names, sp.Name())
			}
			for _, ev := range sp.Events() {
				for _, a := range ev.Attributes {
					if ev.Name == choreo.StatusEventName && a.Key == choreo.StatusKey {
						statuses[a.Value.AsString()] = sp.SpanContext().TraceID()
					}
				}
			}
		}
		slices.Sort(names)
		_, running := statuses["running"]
		_, compensated := statuses["compensated"]
		if slices.Equal(names, want) && running && compensated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("choreo spans = %v, want %v; status events %v, want running ... compensated", names, want, statuses)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var root trace.TraceID
	for _, sp := range spans {
		if sp.Name() == "choreo order" {
			root = sp.SpanContext().TraceID()
		}
	}
	for _, sp := range spans {
		if sp.SpanContext().TraceID() != root {
			t.Errorf("span %q in trace %s, want the root's %s", sp.Name(), sp.SpanContext().TraceID(), root)
		}
		if sp.Name() != "choreo order" && !sp.Parent().IsValid() {
			t.Errorf("span %q has no parent", sp.Name())
		}
	}
	// The status events are on the tracker's delivery spans, in the
	// same trace. "compensating" may be missing: when the tracker gets
	// stock.released before shipment.failed, the instance goes from
	// running to compensated.
	for st, tid := range statuses {
		if tid != root {
			t.Errorf("status event %s in trace %s, want the root's %s", st, tid, root)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := orderSaga("")
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(orderSaga) = %v", err)
	}
	for name, change := range map[string]func(s *choreo.Saga){
		"no name":           func(s *choreo.Saga) { s.Name = "" },
		"no start":          func(s *choreo.Saga) { s.Start = "" },
		"step without on":   func(s *choreo.Saga) { s.Steps[0].On = nil },
		"duplicate step":    func(s *choreo.Saga) { s.Steps[1].Name = "reserve" },
		"event emitted 2x":  func(s *choreo.Saga) { s.Steps[1].Success = "stock.reserved" },
		"unknown trigger":   func(s *choreo.Saga) { s.Steps[2].On = []string{"nothing"} },
		"unknown undo step": func(s *choreo.Saga) { s.Steps[3].Compensates = "nothing" },
	} {
		t.Run(name, func(t *testing.T) {
			s := orderSaga("")
			change(s)
			if err := s.Validate(); !errors.Is(err, choreo.ErrInvalidSaga) {
				t.Errorf("Validate = %v, want ErrInvalidSaga", err)
			}
		})
	}
	if _, err := choreo.NewParticipant(t.Context(), ok, "nothing", nil, choreo.Options{}); err == nil {
		t.Error("NewParticipant(unknown step) = nil error")
	}
}
