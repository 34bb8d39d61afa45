package barrier

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/testenv"
	sagapkg "github.com/cairnhq/cairn/saga"
)

// testDB is an empty participant database.
type testDB struct {
	d  cqrs.Dialect
	db *sql.DB
	// admin and app are set for PostgreSQL: another pool on the same
	// database, and the application_name of db's connections, to watch
	// them in pg_stat_activity.
	admin *sql.DB
	app   string
}

func randHex(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// sqliteDB returns a database in a fresh SQLite file (WAL, immediate
// transactions, a busy timeout), closed when t ends.
func sqliteDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "participant.db")+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// testDBs returns an empty database of each dialect: SQLite in a temp
// file, and a schema of its own on the machine's PostgreSQL (skipped when
// it does not answer, except under CI=true).
func testDBs(t *testing.T) []testDB {
	t.Helper()
	out := []testDB{{d: cqrs.SQLite, db: sqliteDB(t)}}
	addr := testenv.Require(t, testenv.Postgres)
	if addr == "" {
		return out
	}
	id := randHex(t)
	schema, app := "barrier_"+id, "barrier_test_"+id
	admin, err := sql.Open("pgx", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	pg, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	return append(out, testDB{d: cqrs.Postgres, db: pg, admin: admin, app: app})
}

// shop is the business side of a participant: a stock row per saga, which
// the action decrements and the compensation increments, and a log of the
// effects in commit order.
type shop struct {
	tdb testDB
	b   *Barrier
}

const initialQty = 10

func newShop(t *testing.T, tdb testDB) *shop {
	t.Helper()
	ctx := t.Context()
	b, err := New(ctx, tdb.db, tdb.d)
	if err != nil {
		t.Fatal(err)
	}
	serial := "INTEGER PRIMARY KEY"
	if tdb.d == cqrs.Postgres {
		serial = "BIGSERIAL PRIMARY KEY"
	}
	for _, q := range []string{
		"CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER NOT NULL)",
		"CREATE TABLE effects (seq " + serial + ", saga TEXT NOT NULL, op TEXT NOT NULL)",
	} {
		if _, err := tdb.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return &shop{tdb: tdb, b: b}
}

// q rebinds query for the shop's dialect.
func (s *shop) q(query string) string { return s.tdb.d.Rebind(query) }

// stock adds saga's stock row.
func (s *shop) stock(t *testing.T, saga string) {
	t.Helper()
	if _, err := s.tdb.db.ExecContext(t.Context(), s.q("INSERT INTO stock (item, qty) VALUES (?, ?)"), saga, initialQty); err != nil {
		t.Fatal(err)
	}
}

// effect returns the business function of op on saga: it moves one unit of
// stock and logs itself, then fails with fail if it is not nil.
func (s *shop) effect(saga string, op Op, fail error) func(context.Context, *sql.Tx) error {
	delta := -1
	if op == Compensate {
		delta = 1
	}
	return func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q("UPDATE stock SET qty = qty + ? WHERE item = ?"), delta, saga); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO effects (saga, op) VALUES (?, ?)"), saga, op.String()); err != nil {
			return err
		}
		return fail
	}
}

// state returns saga's stock and its effects in order.
func (s *shop) state(t *testing.T, saga string) (int, []string) {
	t.Helper()
	ctx := t.Context()
	var qty int
	if err := s.tdb.db.QueryRowContext(ctx, s.q("SELECT qty FROM stock WHERE item = ?"), saga).Scan(&qty); err != nil {
		t.Fatal(err)
	}
	rows, err := s.tdb.db.QueryContext(ctx, s.q("SELECT op FROM effects WHERE saga = ? ORDER BY seq"), saga)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ops []string
	for rows.Next() {
		var op string
		if err := rows.Scan(&op); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return qty, ops
}

// rows counts saga's rows in the barrier's table.
func (s *shop) rows(t *testing.T, saga string) int {
	t.Helper()
	var n int
	if err := s.tdb.db.QueryRowContext(t.Context(), s.q("SELECT count(*) FROM "+Table+" WHERE saga_id = ?"), saga).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var errBoom = errors.New("business function failed after its writes")

// TestCases runs DTM's cases one call after another, checking each call's
// outcome and error, the barrier rows after it, and the effects at the end.
func TestCases(t *testing.T) {
	type step struct {
		op        Op
		barrierID string
		fail      error
		want      Outcome
		wantErr   error
		wantRows  int
	}
	tests := []struct {
		name    string
		steps   []step
		wantQty int
		wantOps []string
	}{
		{
			name: "action then compensation",
			steps: []step{
				{op: Action, want: Executed, wantRows: 1},
				{op: Compensate, want: Executed, wantRows: 2},
			},
			wantQty: initialQty, wantOps: []string{"action", "compensate"},
		},
		{
			name: "duplicate action",
			steps: []step{
				{op: Action, want: Executed, wantRows: 1},
				{op: Action, want: Duplicate, wantRows: 1},
				{op: Action, want: Duplicate, wantRows: 1},
			},
			wantQty: initialQty - 1, wantOps: []string{"action"},
		},
		{
			name: "duplicate compensation",
			steps: []step{
				{op: Action, want: Executed, wantRows: 1},
				{op: Compensate, want: Executed, wantRows: 2},
				{op: Compensate, want: Duplicate, wantRows: 2},
			},
			wantQty: initialQty, wantOps: []string{"action", "compensate"},
		},
		{
			name: "null compensation then the action refused",
			steps: []step{
				{op: Compensate, want: NullCompensation, wantRows: 2},
				{op: Action, want: Refused, wantErr: ErrHanging, wantRows: 2},
				{op: Compensate, want: Duplicate, wantRows: 2},
				{op: Action, want: Refused, wantErr: ErrHanging, wantRows: 2},
			},
			wantQty: initialQty, wantOps: nil,
		},
		{
			name: "action error rolls back the effect and the barrier row",
			steps: []step{
				{op: Action, fail: errBoom, want: Failed, wantErr: errBoom, wantRows: 0},
				{op: Action, want: Executed, wantRows: 1},
				{op: Action, want: Duplicate, wantRows: 1},
			},
			wantQty: initialQty - 1, wantOps: []string{"action"},
		},
		{
			name: "compensation error rolls back, and its retry runs",
			steps: []step{
				{op: Action, want: Executed, wantRows: 1},
				{op: Compensate, fail: errBoom, want: Failed, wantErr: errBoom, wantRows: 1},
				{op: Compensate, want: Executed, wantRows: 2},
			},
			wantQty: initialQty, wantOps: []string{"action", "compensate"},
		},
		{
			name: "barrier IDs are separate barriers",
			steps: []step{
				{op: Action, barrierID: "01", want: Executed, wantRows: 1},
				{op: Action, barrierID: "02", want: Executed, wantRows: 2},
				{op: Action, barrierID: "01", want: Duplicate, wantRows: 2},
				{op: Compensate, barrierID: "02", want: Executed, wantRows: 3},
				{op: Compensate, barrierID: "03", want: NullCompensation, wantRows: 5},
			},
			wantQty: initialQty - 1, wantOps: []string{"action", "action", "compensate"},
		},
	}
	for _, tdb := range testDBs(t) {
		t.Run(tdb.d.String(), func(t *testing.T) {
			s := newShop(t, tdb)
			total := 0
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					saga := fmt.Sprintf("saga-%d", i)
					s.stock(t, saga)
					for j, st := range tt.steps {
						br := Branch{SagaID: saga, BranchID: "reserve", Op: st.op, BarrierID: st.barrierID}
						got, err := s.b.Do(t.Context(), br, s.effect(saga, st.op, st.fail))
						if got != st.want || !errors.Is(err, st.wantErr) || (err == nil) != (st.wantErr == nil) {
							t.Fatalf("step %d: Do(%v) = %v, %v, want %v, %v", j, br, got, err, st.want, st.wantErr)
						}
						if st.wantErr == ErrHanging && !errors.Is(err, sagapkg.ErrPermanent) {
							t.Fatalf("step %d: a refused action's error %v is not saga.ErrPermanent", j, err)
						}
						if n := s.rows(t, saga); n != st.wantRows {
							t.Errorf("step %d: %v left %d barrier rows, want %d", j, br, n, st.wantRows)
						}
						var he *HangingError
						if errors.As(err, &he) && he.Branch != br {
							t.Errorf("step %d: HangingError.Branch = %v, want %v", j, he.Branch, br)
						}
						if st.fail != nil && err != st.fail {
							t.Errorf("step %d: Do returned %v, want fn's error as is", j, err)
						}
					}
					qty, ops := s.state(t, saga)
					if qty != tt.wantQty {
						t.Errorf("stock = %d, want %d", qty, tt.wantQty)
					}
					if diff := cmp.Diff(tt.wantOps, ops); diff != "" {
						t.Errorf("effects (-want +got):\n%s", diff)
					}
					total += tt.steps[len(tt.steps)-1].wantRows
				})
			}
			// Rows are pruned by age only.
			if n, err := s.b.Prune(t.Context(), time.Now().Add(-time.Hour)); err != nil || n != 0 {
				t.Errorf("Prune(an hour ago) = %d, %v, want 0", n, err)
			}
			if n, err := s.b.Prune(t.Context(), time.Now().Add(time.Minute)); err != nil || n != int64(total) {
				t.Errorf("Prune(in a minute) = %d, %v, want %d", n, err, total)
			}
		})
	}
}

// TestCallInCallersTransaction checks that Call's rows and fn's writes
// share the caller's transaction: a rollback after a nil error undoes
// both, and a commit keeps both.
func TestCallInCallersTransaction(t *testing.T) {
	for _, tdb := range testDBs(t) {
		t.Run(tdb.d.String(), func(t *testing.T) {
			ctx := t.Context()
			s := newShop(t, tdb)
			s.stock(t, "s")
			br := Branch{SagaID: "s", BranchID: "reserve", Op: Action}
			for _, commit := range []bool{false, true} {
				tx, err := tdb.db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := s.b.Call(ctx, tx, br, s.effect("s", Action, nil)); got != Executed || err != nil {
					t.Fatalf("Call = %v, %v, want executed", got, err)
				}
				end := tx.Rollback
				if commit {
					end = tx.Commit
				}
				if err := end(); err != nil {
					t.Fatal(err)
				}
				want := 0
				if commit {
					want = 1
				}
				if qty, _ := s.state(t, "s"); qty != initialQty-want || s.rows(t, "s") != want {
					t.Errorf("commit %v: stock %d, barrier rows %d, want %d, %d", commit, qty, s.rows(t, "s"), initialQty-want, want)
				}
			}
		})
	}
}

// waitLockWaiters polls, until a deadline, until n of tdb's connections
// wait for a lock, and reports whether they did. SQLite has nothing to
// watch: it reports true at once.
func waitLockWaiters(ctx context.Context, tdb testDB, n int) (int, bool) {
	if tdb.d != cqrs.Postgres {
		return n, true
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got int
		err := tdb.admin.QueryRowContext(ctx,
			"SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", tdb.app).Scan(&got)
		if err == nil && got >= n {
			return got, true
		}
		if err != nil || time.Now().After(deadline) {
			return got, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConcurrentDuplicates sends the same action from 8 goroutines at
// once: exactly one runs. On PostgreSQL the one that runs first waits
// until the 7 others are blocked on the barrier's row, so that they all
// race it while its transaction is open.
func TestConcurrentDuplicates(t *testing.T) {
	const copies = 8
	for _, tdb := range testDBs(t) {
		t.Run(tdb.d.String(), func(t *testing.T) {
			ctx := t.Context()
			s := newShop(t, tdb)
			for round := range 3 {
				saga := fmt.Sprintf("dup-%d", round)
				s.stock(t, saga)
				br := Branch{SagaID: saga, BranchID: "reserve", Op: Action}
				start := make(chan struct{})
				outcomes := make(chan Outcome, copies)
				var wg sync.WaitGroup
				for range copies {
					wg.Go(func() {
						<-start
						out, err := s.b.Do(ctx, br, func(ctx context.Context, tx *sql.Tx) error {
							if got, ok := waitLockWaiters(ctx, tdb, copies-1); !ok {
								return fmt.Errorf("%d connections wait for the barrier's row lock, want %d", got, copies-1)
							}
							return s.effect(saga, Action, nil)(ctx, tx)
						})
						if err != nil {
							t.Errorf("Do(%v) = %v, %v", br, out, err)
						}
						outcomes <- out
					})
				}
				close(start)
				wg.Wait()
				close(outcomes)
				count := map[Outcome]int{}
				for o := range outcomes {
					count[o]++
				}
				if want := map[Outcome]int{Executed: 1, Duplicate: copies - 1}; !cmp.Equal(count, want) {
					t.Errorf("round %d: outcomes %v, want %v", round, count, want)
				}
				if qty, ops := s.state(t, saga); qty != initialQty-1 || len(ops) != 1 {
					t.Errorf("round %d: stock %d, effects %v, want %d and one action", round, qty, ops, initialQty-1)
				}
			}
		})
	}
}

// TestConcurrentActionAndCompensation sends a branch's action from 4
// goroutines and its compensation from 4 others, all at once: the action
// is either executed and then compensated, or never executed after a
// null compensation; it is never left hanging.
func TestConcurrentActionAndCompensation(t *testing.T) {
	const goroutines, rounds = 8, 10
	for _, tdb := range testDBs(t) {
		t.Run(tdb.d.String(), func(t *testing.T) {
			ctx := t.Context()
			s := newShop(t, tdb)
			for round := range rounds {
				saga := fmt.Sprintf("race-%d", round)
				s.stock(t, saga)
				start := make(chan struct{})
				type result struct {
					op  Op
					out Outcome
				}
				results := make(chan result, goroutines)
				var wg sync.WaitGroup
				for i := range goroutines {
					op := Action
					if i%2 == 1 {
						op = Compensate
					}
					br := Branch{SagaID: saga, BranchID: "reserve", Op: op}
					wg.Go(func() {
						<-start
						out, err := s.b.Do(ctx, br, s.effect(saga, op, nil))
						if err != nil && !(out == Refused && errors.Is(err, ErrHanging)) {
							t.Errorf("Do(%v) = %v, %v", br, out, err)
						}
						results <- result{op, out}
					})
				}
				close(start)
				wg.Wait()
				close(results)
				count := map[result]int{}
				for r := range results {
					count[r]++
				}
				qty, ops := s.state(t, saga)
				compensated := map[result]int{{Action, Executed}: 1, {Action, Duplicate}: 3, {Compensate, Executed}: 1, {Compensate, Duplicate}: 3}
				never := map[result]int{{Action, Refused}: 4, {Compensate, NullCompensation}: 1, {Compensate, Duplicate}: 3}
				switch {
				case cmp.Equal(count, compensated):
					if diff := cmp.Diff([]string{"action", "compensate"}, ops); diff != "" {
						t.Errorf("round %d: executed and compensated, but effects (-want +got):\n%s", round, diff)
					}
				case cmp.Equal(count, never):
					if len(ops) != 0 {
						t.Errorf("round %d: null compensation, but effects %v", round, ops)
					}
				default:
					t.Errorf("round %d: outcomes %v, want %v or %v", round, count, compensated, never)
				}
				if qty != initialQty {
					t.Errorf("round %d: stock %d, want %d (nothing left hanging)", round, qty, initialQty)
				}
			}
		})
	}
}

func TestBranchValidation(t *testing.T) {
	s := newShop(t, testDB{d: cqrs.SQLite, db: sqliteDB(t)})
	ran := false
	fn := func(context.Context, *sql.Tx) error { ran = true; return nil }
	tests := []struct {
		br   Branch
		want string
	}{
		{Branch{BranchID: "b", Op: Action}, "empty SagaID"},
		{Branch{SagaID: "s", Op: Compensate}, "empty BranchID"},
		{Branch{SagaID: "s", BranchID: "b"}, "Op is Op(0)"},
		{Branch{SagaID: "s", BranchID: "b", Op: 7}, "Op is Op(7)"},
	}
	for _, tt := range tests {
		got, err := s.b.Do(t.Context(), tt.br, fn)
		if got != Failed || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Do(%#v) = %v, %v, want failed and an error containing %q", tt.br, got, err, tt.want)
		}
	}
	br := Branch{SagaID: "s", BranchID: "b", Op: Action}
	if got, err := s.b.Do(t.Context(), br, nil); got != Failed || err == nil || !strings.Contains(err.Error(), "nil transaction or function") {
		t.Errorf("Do with a nil fn = %v, %v, want an error", got, err)
	}
	if got, err := s.b.Call(t.Context(), nil, br, fn); got != Failed || err == nil {
		t.Errorf("Call with a nil tx = %v, %v, want an error", got, err)
	}
	if ran {
		t.Error("fn ran for an invalid call")
	}
	if n := s.rows(t, "s"); n != 0 {
		t.Errorf("invalid calls left %d barrier rows", n)
	}
}

func TestNew(t *testing.T) {
	ctx := t.Context()
	db := sqliteDB(t)
	if _, err := New(ctx, db, cqrs.Dialect(9)); err == nil || !strings.Contains(err.Error(), "Dialect(9)") {
		t.Errorf("New(Dialect(9)) = %v, want an error naming it", err)
	}
	if _, err := New(ctx, nil, cqrs.SQLite); err == nil || !strings.Contains(err.Error(), "nil *sql.DB") {
		t.Errorf("New(nil db) = %v, want an error", err)
	}
	for _, name := range []string{"", "drop table x", "a.b.c", "1x"} {
		if _, err := New(ctx, db, cqrs.SQLite, WithTable(name)); err == nil || !strings.Contains(err.Error(), "table name") {
			t.Errorf("New(WithTable(%q)) = %v, want an error naming the table name", name, err)
		}
	}
	for _, tdb := range testDBs(t) {
		t.Run(tdb.d.String(), func(t *testing.T) {
			for range 2 { // the second finds the table
				b, err := New(ctx, tdb.db, tdb.d, WithTable("my_barrier"))
				if err != nil {
					t.Fatal(err)
				}
				br := Branch{SagaID: "s", BranchID: "b", Op: Compensate}
				if _, err := b.Do(ctx, br, func(context.Context, *sql.Tx) error { return nil }); err != nil {
					t.Fatal(err)
				}
			}
			var n int
			if err := tdb.db.QueryRowContext(ctx, "SELECT count(*) FROM my_barrier").Scan(&n); err != nil || n != 2 {
				t.Errorf("rows in my_barrier = %d, %v, want 2", n, err)
			}
			if tdb.d != cqrs.Postgres {
				return
			}
			// Concurrent creations of one table do not fail.
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					if _, err := New(ctx, tdb.db, tdb.d, WithTable("concurrent_barrier")); err != nil {
						t.Errorf("concurrent New = %v", err)
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestTelemetry checks the outcome counter and the span events.
func TestTelemetry(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	b, err := New(ctx, sqliteDB(t), cqrs.SQLite, WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	nop := func(context.Context, *sql.Tx) error { return nil }
	sctx, span := tp.Tracer("test").Start(ctx, "participant")
	for _, br := range []Branch{
		{SagaID: "s1", BranchID: "b", Op: Action},
		{SagaID: "s1", BranchID: "b", Op: Action},
		{SagaID: "s2", BranchID: "b", Op: Compensate},
		{SagaID: "s2", BranchID: "b", Op: Action},
	} {
		_, _ = b.Do(sctx, br, nop)
	}
	_, _ = b.Do(sctx, Branch{SagaID: "s3", BranchID: "b", Op: Action}, func(context.Context, *sql.Tx) error { return errBoom })
	span.End()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != OutcomesMetric || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				out, _ := dp.Attributes.Value("outcome")
				op, _ := dp.Attributes.Value("op")
				got[out.AsString()+"/"+op.AsString()] += dp.Value
			}
		}
	}
	want := map[string]int64{"executed/action": 1, "duplicate/action": 1, "null_compensation/compensate": 1, "refused/action": 1, "failed/action": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", OutcomesMetric, diff)
	}

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1", len(spans))
	}
	var events []string
	for _, e := range spans[0].Events() {
		set := attribute.NewSet(e.Attributes...)
		saga, _ := set.Value("cairn.saga.id")
		out, _ := set.Value("outcome")
		events = append(events, e.Name+" "+saga.AsString()+" "+out.AsString())
	}
	wantEvents := []string{
		"cairn.saga.barrier s1 executed", "cairn.saga.barrier s1 duplicate", "cairn.saga.barrier s2 null_compensation",
		"cairn.saga.barrier s2 refused", "cairn.saga.barrier s3 failed",
	}
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("span events (-want +got):\n%s", diff)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{Action.String(), "action"},
		{Compensate.String(), "compensate"},
		{Op(0).String(), "Op(0)"},
		{Executed.String(), "executed"},
		{Outcome(0).String(), "Outcome(0)"},
		{Branch{SagaID: "s", BranchID: "b", Op: Compensate, BarrierID: "02"}.String(), "s/b/compensate/02"},
		{(&HangingError{Branch{SagaID: "s", BranchID: "b", Op: Action}}).Error(), "barrier: action s/b/action refused: its compensation ran first (anti-hanging)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}
