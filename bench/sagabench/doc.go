// Package sagabench measures cairn's sagas: what the barrier
// (saga/barrier) costs a participant, and the throughput of whole sagas
// run by the orchestrator (package saga) with the barrier on, against the
// same local transactions without either.
//
// One saga is three branches, each the action of a step in its own local
// transaction of the participant's database, one after the other:
//
//   - reserve: UPDATE of a stock row (one of 1,000, round-robin);
//   - charge: INSERT of a payment row;
//   - schedule: INSERT of a shipment row.
//
// The variants, reporting sagas/s:
//
//   - raw: the three transactions with plain database/sql (begin, the
//     write, commit);
//   - barrier: the same three through barrier.Do, which adds to each
//     transaction the INSERT ... ON CONFLICT DO NOTHING of the branch's
//     barrier row (an action inserts one row).
//
// The orchestrator, its messages and its log are not measured: this is
// the barrier's cost on the participant's side. After each sub-benchmark,
// outside the timer, the tables are checked (one row per saga, three
// barrier rows per saga) and emptied.
//
// BenchmarkSagaBarrier runs db=sqlite (a SQLite file: WAL,
// synchronous=FULL, immediate transactions, one connection) and
// db=postgres (a fresh schema of CAIRN_TEST_POSTGRES, else
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable, dropped at the
// end; skipped when nothing answers, failed under CI=true), serially and,
// on PostgreSQL, from 8 goroutines at once (workers=8), each running whole
// sagas on its own connection. Telemetry is off (a no-op meter provider,
// no span in the context).
//
// BenchmarkSagaThroughput runs whole sagas: variant=saga starts each with
// the orchestrator (its store in the same database) and waits for it; each
// step's action runs barrier.Do with the branch from saga.StepInfoFrom.
// variant=raw runs the same three local transactions without barrier or
// orchestrator. conc=1 runs one saga at a time, conc=32 keeps 32 in
// flight. Every saga must complete, and the tables must hold exactly its
// rows, checked outside the timer.
//
// The anchor in cairn's issue is DTM's published figure for sagas with
// its barrier on MySQL: 531 global transactions/s on 4 cores, on its
// hardware, including DTM's server, its store and the HTTP calls to the
// participants, none of which is measured here: compare ratios to raw,
// not the absolute rates. It has no API; run it with
// bench/run.sh SagaBarrier and bench/run.sh SagaThroughput.
package sagabench
