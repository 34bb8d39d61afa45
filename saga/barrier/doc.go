// Package barrier is a sub-transaction barrier for the participants of a
// saga: it makes each branch operation idempotent and safe against
// reordering, inside the participant's own database transaction, with
// the semantics of DTM's sub-transaction barrier (described at
// https://dtm.pub/exception/barrier.html; this is an independent
// implementation).
//
// A saga's orchestrator delivers each step's action, and on failure its
// compensation, at least once and in no guaranteed order: a request is
// retried after a timeout, a compensation is sent for an action whose
// request is still in flight. A participant wraps each operation in
// [Barrier.Call] (or [Barrier.Do]), which records the operation in a table
// of the participant's database (cairn_saga_barrier, keyed by saga ID,
// branch ID, operation and barrier ID) in the same transaction as the
// operation's writes, so that the record and the effect commit or roll
// back together:
//
//   - an action inserts its own row; a compensation first inserts the row
//     of the action it compensates (with reason "compensate"), then its
//     own;
//   - the business function runs only when the operation's own row is
//     new and, for a compensation, the action's row was already there.
//
// The cases, for one branch:
//
//	arrives                         action row   own row   Outcome           fn runs
//	action, first                   -            new       Executed          yes
//	action, again                   -            present   Duplicate         no
//	action after its compensation   -            present*  Refused           no (error ErrHanging)
//	compensation after the action   present      new       Executed          yes
//	compensation, again             present      present   Duplicate         no
//	compensation before the action  new          new       NullCompensation  no
//
// (*) inserted by the compensation, with reason "compensate". The refused
// action returns a [*HangingError], which matches [ErrHanging]: the
// orchestrator must treat it as permanent, since the saga has moved on to
// compensating.
//
// When fn returns an error, [Barrier.Call] returns it and the caller rolls
// back: the barrier's row goes with the effect, so a retry of the same
// operation runs fn again. Concurrent calls of one operation are
// serialised by the table's primary key: on PostgreSQL the second insert
// waits for the first transaction and finds the row if it committed, or
// inserts it if it rolled back; SQLite runs one write transaction at a
// time. So eight copies of an action sent at once have one effect, and an
// action racing its compensation is either executed and then compensated,
// or refused after a null compensation: never left hanging.
//
// The barrier needs the READ COMMITTED isolation level on PostgreSQL (the
// default); under REPEATABLE READ or SERIALIZABLE a racing duplicate fails
// with a serialization error instead, which the caller may retry. On
// SQLite, open the database with _txlock=immediate (or a single
// connection) and a busy_timeout, as for any concurrent writers.
//
// Each call adds an event named "cairn.saga.barrier" to the span in its
// context and counts its outcome in the counter
// cairn.saga.barrier.outcomes ([OutcomesMetric]).
package barrier
