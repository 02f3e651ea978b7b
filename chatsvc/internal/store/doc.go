// Package store keeps the chat service's tables (Contact, ChatMessage, ChatUnread,
// ChatNotified) on SQLite or MySQL, with goose migrations per dialect embedded under
// migrations/.
//
// Both dialects share the SQL: the statements use only what SQLite and MySQL both accept
// ("?" placeholders, LIMIT, UNION ALL, correlated subqueries); where they differ (row locks,
// isolation level, the upsert's clause) the store branches on the dialect.
//
// Writes that must report exactly what they changed select the rows with the status
// predicate and update the same rows in the same transaction, so a status never moves
// backward and two concurrent calls never both count a row: MarkDelivered locks the rows it
// selects on MySQL (SQLite write transactions are exclusive), MarkRead the reader's
// ChatUnread row (unread.go), which also keeps the unread counts.
//
// Writer batches concurrent message inserts and delivery receipts into one transaction
// (group commit); the statements of a batch are prepared once per connection (prepared.go).
//
// A Store is safe for concurrent use. Tests count its statements with dbtest.OpenCounting
// to prove that an operation runs a constant number of them.
package store
