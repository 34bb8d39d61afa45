// Package eventstorebench measures cairn's event store against the plainest
// code that writes and reads the same rows: appends of 1 and 100 events
// (serially and from 8 writers) on PostgreSQL against a pgx CopyFrom or
// INSERT in one transaction, an append of 100 events on SQLite against a
// prepared INSERT in one transaction, and a catch-up read of a 20,000-event
// global log in pages of 1000 on both against a bare keyset SELECT loop.
// Every benchmark reports events/s besides sec/op.
//
// The PostgreSQL benchmarks use CAIRN_TEST_POSTGRES, else
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable, each in a fresh
// schema dropped at the end; they skip when nothing answers there (and fail
// under CI=true, like the integration tests). It has no API; run it with
// bench/run.sh 'Postgres|SQLite|CatchUp'.
package eventstorebench
