package system_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/charla/charla/cmd/internal/system"
	"github.com/charla/charla/cmd/internal/system/systemtest"
	"github.com/charla/charla/shared/bus"
	"github.com/charla/charla/shared/bus/bustest"
	"github.com/charla/charla/shared/eventlog"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// frame is a WebSocket frame of docs/protocol.md §3.
type frame struct {
	Type    string          `json:"type"`
	PID     string          `json:"pid"`
	Payload json.RawMessage `json:"payload"`
}

func dial(t *testing.T, s *systemtest.System, token string) *websocket.Conn {
	t.Helper()
	c, res, err := websocket.DefaultDialer.Dial(s.URL(token), nil)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", s.EdgeAddr, err, res)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next reads frames until one of type typ arrives.
func next(t *testing.T, c *websocket.Conn, typ string) frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var f frame
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

// TestTwoDeploymentsOverNATS runs two complete deployments (services and an edge each) on
// one database and one NATS server, as separate processes would, and sends a message from a
// user on the first edge to a user on the second: the event crosses between processes only
// through NATS and the shared database.
func TestTwoDeploymentsOverNATS(t *testing.T) {
	t.Parallel()
	backend := sqldb.SQLite
	if os.Getenv("MYSQL_TEST_DSN") != "" {
		backend = sqldb.MySQL
	}
	dbURL := dbtest.NewURL(t, backend)
	url := bustest.NATSURL(t)
	// This test's own stream and subjects: the NATS server may be shared with other tests.
	stream := fmt.Sprintf("T%d", time.Now().UnixNano())
	history := eventlog.Options{JetStream: eventlog.JetStreamOptions{Stream: stream, Subject: "t." + stream}}
	// Registered first, so it runs last: after both deployments stopped following the stream.
	t.Cleanup(func() {
		nb, err := bus.ConnectNATS(url)
		if err != nil {
			return
		}
		defer nb.Close()
		if js, err := jetstream.New(nb.Conn()); err == nil {
			_ = js.DeleteStream(context.Background(), stream)
		}
	})
	var deployments [2]*systemtest.System
	for i := range deployments {
		b, err := bus.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		deployments[i] = systemtest.Start(t, systemtest.Options{
			DatabaseURL: dbURL,
			Options:     func(o *system.Options) { o.Bus = b; o.History = history },
		})
	}
	a, b := deployments[0], deployments[1]
	alice, bob := a.NewUser(t, "alice"), b.NewUser(t, "bob")
	chatID := a.Contact(t, alice, bob)

	aliceConn := dial(t, a, alice.Token)
	bobConn := dial(t, b, bob.Token)
	// Both connections are registered with presence before their first frame is served, so
	// one round trip each guarantees they are routed.
	for _, c := range []*websocket.Conn{aliceConn, bobConn} {
		if err := c.WriteJSON(map[string]any{"type": "GET_CHAT_LIST", "pid": "warmup"}); err != nil {
			t.Fatal(err)
		}
		next(t, c, "CHAT_LIST")
	}
	if err := aliceConn.WriteJSON(map[string]any{
		"type": "SEND_CHAT_MESSAGE", "pid": "m1",
		"payload": map[string]any{"toUserId": bob.ID, "text": "hola desde el otro edge"},
	}); err != nil {
		t.Fatal(err)
	}
	ack := next(t, aliceConn, "SERVER_ACK")
	if ack.PID != "m1" {
		t.Errorf("ack pid = %q, want m1", ack.PID)
	}
	got := next(t, bobConn, "NEW_CHAT_MESSAGE")
	var msg struct {
		ChatID       string `json:"chatId"`
		Text         string `json:"text"`
		FromUserID   int64  `json:"fromUserId"`
		FromUsername string `json:"fromUsername"`
	}
	if err := json.Unmarshal(got.Payload, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Text != "hola desde el otro edge" || msg.FromUserID != alice.ID || msg.FromUsername != alice.UserName || msg.ChatID != fmt.Sprint(chatID) {
		t.Errorf("bob got %+v, want alice's message in chat %d", msg, chatID)
	}
	// And the delivered receipt travels back to alice's edge.
	status := next(t, aliceConn, "MESSAGE_STATUS_UPDATE")
	var su struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(status.Payload, &su)
	if su.Status != "delivered" {
		t.Errorf("alice got status %q, want delivered", su.Status)
	}
}
