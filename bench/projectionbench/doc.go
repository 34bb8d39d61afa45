// Package projectionbench measures catch-up subscriptions with a handler
// and a checkpoint: how many events/s cairn's eventstore.Subscribe and
// cqrs.Projector get through, against a plain database/sql loop doing the
// same writes.
//
// Every variant reads the same 20,000 events (200 streams of 100, small
// JSON documents), prepared outside the timer, from the start of the
// global log, in batches of 256, and reports events/s:
//
//   - subscribe: eventstore.Subscribe with a no-op handler, the cost of
//     reading and delivering the log alone;
//   - projector: a cqrs.Projector whose Projection inserts one row per
//     event into a read-model table, with the checkpoint moved in the same
//     transaction (cqrs_checkpoints);
//   - raw: a loop of Store.ReadAll batches, each applied in one
//     transaction of plain database/sql doing the same INSERTs and an
//     UPDATE of a checkpoint row.
//
// Between iterations, outside the timer, the read-model tables are
// emptied and the checkpoints set back to 0.
//
// BenchmarkProjectionSQLite keeps the event store and the read model in
// two SQLite files (WAL, synchronous=FULL, immediate transactions, like
// the store). BenchmarkProjectionPostgres keeps both in a fresh schema of
// CAIRN_TEST_POSTGRES, else
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable, dropped at the
// end; it skips when nothing answers there (and fails under CI=true). It
// has no API; run it with bench/run.sh Projection.
package projectionbench
