// Package apart tests Charla deployed apart, with real processes: two replicas of each of
// the four services and two edges, built from their commands, on a fresh MySQL database and
// an embedded NATS server with JetStream that the test stops and restarts. The drill of
// issue 11 (item 7) and issue 15: kill -9 an edge while messages, receipts, presence changes
// and notifications are raised for its users; its clients resume on the other edge and see
// every sequenced event exactly once, in seq order; NATS restarts and the streams recover;
// the connection cap holds across edges. The fault drill (drill_test.go, issue 15 item 3)
// gives every process both replicas of each service, reaches MySQL through a TCP fault
// proxy, and injects one fault at a time under chat load (RELIABILITY.md).
//
// The package holds only tests (this file is its doc). They run when MYSQL_TEST_DSN is set
// and CHARLA_APART=1 (make test-apart; apart_test.go) or CHARLA_DRILL=1 (make drill;
// drill_test.go).
package apart
