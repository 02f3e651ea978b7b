// Package rpc holds what every internal Connect service and client shares: the bearer-token
// interceptor for INTERNAL_API_TOKEN, the mux that mounts a service beside gRPC health
// checking (connectrpc.com/grpchealth) and server reflection (connectrpc.com/grpcreflect),
// the rule that an unauthenticated listener binds only to loopback, an HTTP client and
// server that speak HTTP/1.1 and cleartext HTTP/2, so Connect, gRPC and gRPC-Web all work,
// and the Balancer that spreads a client's calls over a service's replicas.
//
// # Replicas
//
// A service address (CHAT_URL and its siblings, validated by CheckTarget) names one
// replica or several: a comma-separated list of host:port or http(s)://host[:port]
// entries, and any entry whose host is a name (not an IP address, not localhost) stands
// for every address the name resolves to, as a headless Kubernetes Service or a Compose
// service with several replicas answers. A Balancer, the http.RoundTripper of the
// service's client, turns the address into a set of replicas and sends each request to
// one of them:
//
//   - Names are looked up when the Balancer starts and every ResolveEvery after (10 s), by
//     one goroutine that Close stops. Until a lookup answers, a name is its own single
//     replica (the dialer resolves it, as without a Balancer); a failed lookup keeps the
//     replicas it last gave, and a name that no longer exists falls back to itself.
//   - Requests go round robin over the replicas that are not ejected, from a replica
//     picked at random, so that the first calls of many processes (their event streams)
//     do not all land on one. Every request is a stream of its own on the one HTTP/2
//     connection the transport keeps per replica, so the load spreads per call, and an
//     event stream stays on its replica until it ends.
//   - A replica that could not be reached (the dial failed, or the connection broke
//     before the answer's headers) is ejected: it gets no request for EjectFor (1 s),
//     doubled for each further failure in a row up to MaxEject (30 s); calls that were
//     under way together fail it once. Afterwards a request tries it again; an answer
//     clears its record. When every replica is ejected, requests still try them in turn,
//     so a single replica behaves as without a Balancer.
//   - A request whose replica could not be reached goes once more, to another replica,
//     when that cannot do harm: the connection could not be made, or closed before the
//     request was written on it, as that of a replica shutting down may (nothing was
//     sent), or the call is idempotent (its procedure has an idempotency_level, or its context was
//     marked with Idempotent). A call that may have reached the replica is not sent
//     again: the caller gets the error (unavailable) and decides. Client streams, whose
//     bodies cannot be read twice, are never sent again.
//
// The Balancer holds its replicas under one mutex, taken briefly to pick a replica and to
// record an answer or a failure; requests run outside it. It is safe for concurrent use.
// It spreads calls, not load: it does not look at a replica's health answers or latency,
// and a replica that is up but failing its calls keeps its turn.
package rpc
