package hub

// The seed's ConnectionManager offered IsUserOnline, SendMessageToUser and GetConnection.
// Production code does not use them: every event needs its own pid per connection
// (docs/protocol.md §3) and a sequenced one passes its connection's cursor, so the edge
// writes through Connections and Connection.SendEvent. The tests keep them as helpers
// built on that same API.

// isUserOnline tells whether the user has a registered connection.
func (m *ConnectionManager[U]) isUserOnline(userID int64) bool {
	return len(m.Connections(userID)) > 0
}

// sendToUser enqueues msg as an event on every connection of the user but excludeConnID
// and returns how many accepted it.
func (m *ConnectionManager[U]) sendToUser(userID int64, msg []byte, excludeConnID string) int {
	n := 0
	for _, c := range m.Connections(userID) {
		if excludeConnID != "" && c.connID == excludeConnID {
			continue
		}
		if c.SendEvent(msg, nil) == nil {
			n++
		}
	}
	return n
}

// oneConnection returns one connection of the user, if any.
func (m *ConnectionManager[U]) oneConnection(userID int64) (*Connection[U], bool) {
	if conns := m.Connections(userID); len(conns) > 0 {
		return conns[0], true
	}
	return nil, false
}
