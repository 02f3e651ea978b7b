package bench

// Outcome sorts a phase's written messages by what became of them, each counted once:
// the five counts add up to the messages written. The overload and the soak report it.
type Outcome struct {
	// Delivered were read by their recipient within the grace (by the end of the drain);
	// Late were read after it.
	Delivered, Late int64
	// AckedLost were acknowledged (SERVER_ACK) and never read: the server lost them.
	AckedLost int64
	// Refused were answered with an ERROR_NOTIFICATION (503: pushback) and never read;
	// Unanswered had neither answer and were never read. The client knows to send both
	// again.
	Refused, Unanswered int64
}

// Unacked is the messages never acknowledged nor read: refused or unanswered.
func (o Outcome) Unacked() int64 { return o.Refused + o.Unanswered }

// outcome sorts the messages of the tracker's phase k, the seqs [start[k],
// start[k]+offered), sent of them written. A message read counts as delivered or late
// (the phase's count of late deliveries splits them); one never read is lost acked if
// acknowledged, else refused if answered with an error; the rest of those written are
// unanswered.
func (t *tracker) outcome(k int, offered, sent int64) Outcome {
	var o Outcome
	var read int64
	for seq := t.start[k]; seq < t.start[k]+offered; seq++ {
		switch {
		case t.got[seq].Load():
			read++
		case t.acked[seq].Load():
			o.AckedLost++
		case t.refused[seq].Load():
			o.Refused++
		}
	}
	p := &t.phases[k]
	p.mu.Lock()
	o.Late = min(p.late, read)
	p.mu.Unlock()
	o.Delivered = read - o.Late
	o.Unanswered = max(sent-read-o.AckedLost-o.Refused, 0)
	return o
}
