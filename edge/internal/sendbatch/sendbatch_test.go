package sendbatch_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/charla/charla/edge/internal/sendbatch"
	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
)

// chatPeer answers SendMessages as the chat service does, one result per message in its
// position: a message whose text starts with "deny" is refused (permission_denied), any
// other gets the next message id. While gate is set, each call waits for a value on it.
type chatPeer struct {
	mu     sync.Mutex
	calls  [][]string // texts of each call, in call order
	nextID int64
	gate   chan struct{}
	fail   error // when set, every call fails with it
}

func (p *chatPeer) SendMessages(ctx context.Context, req *connect.Request[chatv1.SendMessagesRequest]) (*connect.Response[chatv1.SendMessagesResponse], error) {
	var texts []string
	for _, m := range req.Msg.GetMessages() {
		texts = append(texts, m.GetText())
	}
	p.mu.Lock()
	p.calls = append(p.calls, texts)
	gate, fail := p.gate, p.fail
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	res := &chatv1.SendMessagesResponse{}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range req.Msg.GetMessages() {
		if strings.HasPrefix(m.GetText(), "deny") {
			res.Results = append(res.Results, &chatv1.SendMessageResult{Result: &chatv1.SendMessageResult_Error{
				Error: &chatv1.SendMessageError{Code: uint32(connect.CodePermissionDenied), Message: "not an accepted contact: " + m.GetText()},
			}})
			continue
		}
		p.nextID++
		res.Results = append(res.Results, &chatv1.SendMessageResult{Result: &chatv1.SendMessageResult_Sent{
			Sent: &chatv1.SendMessageResponse{MessageId: p.nextID, ChatId: m.GetChatId(), ClientMessageId: m.GetClientMessageId()},
		}})
	}
	return connect.NewResponse(res), nil
}

func (p *chatPeer) callTexts() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]string(nil), p.calls...)
}

// waitCalls waits until the peer has received n calls.
func (p *chatPeer) waitCalls(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(p.callTexts()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d calls, got %v", n, p.callTexts())
		}
		time.Sleep(time.Millisecond)
	}
}

func msg(text string) *connect.Request[chatv1.SendMessageRequest] {
	return connect.NewRequest(&chatv1.SendMessageRequest{UserId: 1, ChatId: 7, Text: text, ClientMessageId: "c-" + text})
}

func TestASendAloneGoesOutAtOnce(t *testing.T) {
	t.Parallel()
	peer := &chatPeer{}
	b := sendbatch.New(peer, sendbatch.Options{})
	res, err := b.SendMessage(context.Background(), msg("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetMessageId() != 1 || res.Msg.GetClientMessageId() != "c-hello" {
		t.Fatalf("ack: got %v, want message 1 for c-hello", res.Msg)
	}
	if calls := peer.callTexts(); len(calls) != 1 || len(calls[0]) != 1 {
		t.Fatalf("calls: got %v, want one call of one message", calls)
	}
}

// TestSendsWaitingForACallShareTheNext: with both calls in flight held by the chat
// service, ten more sends wait and then go out together in one call, each answered with
// its own result.
func TestSendsWaitingForACallShareTheNext(t *testing.T) {
	t.Parallel()
	peer := &chatPeer{gate: make(chan struct{})}
	b := sendbatch.New(peer, sendbatch.Options{MaxInFlight: 2})
	type answer struct {
		text string
		id   int64
		err  error
	}
	answers := make(chan answer, 12)
	send := func(text string) {
		res, err := b.SendMessage(context.Background(), msg(text))
		a := answer{text: text, err: err}
		if err == nil {
			a.id = res.Msg.GetMessageId()
			if res.Msg.GetClientMessageId() != "c-"+text {
				a.err = fmt.Errorf("ack of %q names %q", text, res.Msg.GetClientMessageId())
			}
		}
		answers <- a
	}
	go send("first")
	peer.waitCalls(t, 1)
	go send("second")
	peer.waitCalls(t, 2)
	for i := range 10 {
		text := fmt.Sprintf("m%d", i)
		if i == 4 {
			text = "deny-m4"
		}
		go send(text)
	}
	// Let the ten queue up behind the two held calls, then release everything.
	time.Sleep(50 * time.Millisecond)
	close(peer.gate)
	ids := map[int64]string{}
	for range 12 {
		a := <-answers
		switch {
		case a.text == "deny-m4":
			if connect.CodeOf(a.err) != connect.CodePermissionDenied || !strings.Contains(a.err.Error(), "not an accepted contact: deny-m4") {
				t.Fatalf("refused send: got %v, want permission_denied with the service's message", a.err)
			}
		case a.err != nil:
			t.Fatalf("send %q: %v", a.text, a.err)
		default:
			if other, dup := ids[a.id]; dup {
				t.Fatalf("sends %q and %q both got message %d", a.text, other, a.id)
			}
			ids[a.id] = a.text
		}
	}
	calls := peer.callTexts()
	if len(calls) != 3 || len(calls[0]) != 1 || len(calls[1]) != 1 || len(calls[2]) != 10 {
		t.Fatalf("calls: got %v, want two of one message, then one of the ten that waited", calls)
	}
}

func TestCallsAreBoundedInMessagesAndBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  sendbatch.Options
		text func(i int) string
		want []int // messages per call after the held first one
	}{
		{"by count", sendbatch.Options{MaxInFlight: 1, MaxBatch: 4}, func(i int) string { return fmt.Sprint("m", i) }, []int{4, 4, 2}},
		// Each message encodes to about 2 KB (its text and its clientMessageId).
		{"by bytes", sendbatch.Options{MaxInFlight: 1, MaxBatchBytes: 4500}, func(i int) string { return strings.Repeat("x", 1000) + fmt.Sprint(i) }, []int{2, 2, 2, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			peer := &chatPeer{gate: make(chan struct{})}
			b := sendbatch.New(peer, tc.opt)
			var wg sync.WaitGroup
			errs := make(chan error, 11)
			wg.Go(func() {
				_, err := b.SendMessage(context.Background(), msg("held"))
				errs <- err
			})
			peer.waitCalls(t, 1)
			for i := range 10 {
				wg.Go(func() {
					_, err := b.SendMessage(context.Background(), msg(tc.text(i)))
					errs <- err
				})
			}
			time.Sleep(50 * time.Millisecond)
			close(peer.gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			var got []int
			for _, c := range peer.callTexts()[1:] {
				got = append(got, len(c))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("messages per call after the first: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAFailedCallFailsEachOfItsSends(t *testing.T) {
	t.Parallel()
	cause := connect.NewError(connect.CodeUnavailable, errors.New("dial tcp 127.0.0.1:1: connection refused"))
	peer := &chatPeer{fail: cause}
	b := sendbatch.New(peer, sendbatch.Options{})
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			_, err := b.SendMessage(context.Background(), msg(fmt.Sprint("m", i)))
			if connect.CodeOf(err) != connect.CodeUnavailable {
				t.Errorf("send %d with the chat service down: got %v, want unavailable", i, err)
			}
		})
	}
	wg.Wait()
}

// TestASendThatGivesUpLeavesTheQueue: a send whose deadline passes while it waits is
// answered deadline_exceeded at once and is not in the next call.
func TestASendThatGivesUpLeavesTheQueue(t *testing.T) {
	t.Parallel()
	peer := &chatPeer{gate: make(chan struct{})}
	b := sendbatch.New(peer, sendbatch.Options{MaxInFlight: 1})
	done := make(chan error, 1)
	go func() {
		_, err := b.SendMessage(context.Background(), msg("held"))
		done <- err
	}()
	peer.waitCalls(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.SendMessage(ctx, msg("impatient")); connect.CodeOf(err) != connect.CodeDeadlineExceeded {
		t.Fatalf("send past its deadline: got %v, want deadline_exceeded", err)
	}
	later := make(chan error, 1)
	go func() {
		_, err := b.SendMessage(context.Background(), msg("patient"))
		later <- err
	}()
	time.Sleep(20 * time.Millisecond)
	close(peer.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-later; err != nil {
		t.Fatal(err)
	}
	calls := peer.callTexts()
	if len(calls) != 2 || fmt.Sprint(calls[1]) != "[patient]" {
		t.Fatalf("calls: got %v, want the held one, then [patient] without the one that gave up", calls)
	}
}

// TestAFullQueueRefusesAtOnce: with MaxWaiting sends waiting behind a held call, the next
// send is refused with ErrBusy (unavailable) without waiting; the waiting ones are still
// served, and once the queue has drained sends are taken again.
func TestAFullQueueRefusesAtOnce(t *testing.T) {
	t.Parallel()
	peer := &chatPeer{gate: make(chan struct{})}
	b := sendbatch.New(peer, sendbatch.Options{MaxInFlight: 1, MaxWaiting: 3})
	bg := &background{b: b}
	bg.send("held")
	peer.waitCalls(t, 1)
	for i := range 3 {
		bg.send(fmt.Sprint("w", i))
	}
	waitQueued(t, b, 3)
	wantBusy(t, b, "one too many", "send beyond MaxWaiting")
	close(peer.gate)
	bg.wait(t)
	if _, err := b.SendMessage(context.Background(), msg("after")); err != nil {
		t.Fatalf("send after the queue drained: %v", err)
	}
	calls := peer.callTexts()
	if len(calls) == 3 {
		slices.Sort(calls[1])
	}
	if len(calls) != 3 || fmt.Sprint(calls[1]) != "[w0 w1 w2]" || fmt.Sprint(calls[2]) != "[after]" {
		t.Fatalf("calls: got %v, want [held], [w0 w1 w2] (in some order), [after]", calls)
	}
}

// TestAStandingQueueRefusesBeyondACall: calls that keep taking sends which waited past
// QueueTarget for QueueInterval make the queue standing; from then on a send that finds a
// call's worth (MaxBatch) waiting is refused with ErrBusy, far below MaxWaiting, and the
// sends already waiting are still served.
func TestAStandingQueueRefusesBeyondACall(t *testing.T) {
	t.Parallel()
	peer := &chatPeer{gate: make(chan struct{})}
	b := sendbatch.New(peer, sendbatch.Options{MaxInFlight: 1, MaxBatch: 2, MaxWaiting: 100,
		QueueTarget: 5 * time.Millisecond, QueueInterval: 20 * time.Millisecond})
	bg := &background{b: b}
	bg.send("held")
	peer.waitCalls(t, 1)
	// Two rounds of sends that wait 30 ms behind a held call: each round's call takes
	// sends older than the target, the second one an interval after the first.
	for round, calls := range []int{2, 3} {
		bg.send(fmt.Sprint("a", round))
		bg.send(fmt.Sprint("b", round))
		waitQueued(t, b, 2)
		time.Sleep(30 * time.Millisecond)
		peer.gate <- struct{}{} // the held call returns; the next takes the two
		peer.waitCalls(t, calls)
	}
	bg.send("x0")
	bg.send("x1")
	waitQueued(t, b, 2)
	wantBusy(t, b, "refused", "send behind a standing queue holding a call's worth")
	close(peer.gate)
	bg.wait(t)
	for _, c := range peer.callTexts() {
		if slices.Contains(c, "refused") {
			t.Fatalf("the refused send reached the chat service: %v", peer.callTexts())
		}
	}
}

// background runs sends in goroutines of their own, as the edge's connections do.
type background struct {
	b    *sendbatch.Batcher
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (bg *background) send(text string) {
	bg.wg.Go(func() {
		_, err := bg.b.SendMessage(context.Background(), msg(text))
		bg.mu.Lock()
		bg.errs = append(bg.errs, err)
		bg.mu.Unlock()
	})
}

// wait waits for every send and fails the test if one was not served.
func (bg *background) wait(t *testing.T) {
	t.Helper()
	bg.wg.Wait()
	for _, err := range bg.errs {
		if err != nil {
			t.Fatalf("a send that waited: %v", err)
		}
	}
}

// waitQueued waits until n sends wait for a call.
func waitQueued(t *testing.T, b *sendbatch.Batcher, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Waiting() < n {
		if time.Now().After(deadline) {
			t.Fatalf("waiting sends: %d, want %d", b.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// wantBusy sends text and wants it refused at once with ErrBusy; a send accepted by
// mistake would wait for the held call, so it gives up after 5 s.
func wantBusy(t *testing.T, b *sendbatch.Batcher, text, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := b.SendMessage(ctx, msg(text))
	if connect.CodeOf(err) != connect.CodeUnavailable || !errors.Is(err, sendbatch.ErrBusy) {
		t.Fatalf("%s: got %v, want unavailable wrapping ErrBusy", what, err)
	}
}
