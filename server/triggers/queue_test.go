package triggers

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"
)

func triggerIDs(ts []Trigger) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

// fakeClock is a settable clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestQueueDelivery(t *testing.T) {
	q := NewQueue(2*time.Minute, nil)
	tr := q.Enqueue(Trigger{Kind: KindManual, Reason: "r"}, []string{"n1", "n2"})
	if !regexp.MustCompile(`^t-[0-9]{19}-1$`).MatchString(tr.ID) || fmt.Sprintf("t-%d-1", tr.TimeNS) != tr.ID {
		t.Errorf("id %q, time %d", tr.ID, tr.TimeNS)
	}
	for _, node := range []string{"n1", "n2"} {
		got, err := q.Wait(context.Background(), node, "", time.Second)
		if err != nil || len(got) != 1 || got[0].ID != tr.ID || got[0].Reason != "r" {
			t.Errorf("%s: %v, %v", node, got, err)
		}
	}
	start := time.Now()
	got, err := q.Wait(context.Background(), "n3", "", 50*time.Millisecond)
	if got != nil || err != nil || time.Since(start) < 50*time.Millisecond {
		t.Errorf("other node: %v, %v after %v: want nothing after the wait", got, err, time.Since(start))
	}
}

func TestQueueWakesWaiter(t *testing.T) {
	q := NewQueue(2*time.Minute, nil)
	done := make(chan []Trigger)
	go func() {
		got, _ := q.Wait(context.Background(), "n1", "", 10*time.Second)
		done <- got
	}()
	waitFor(t, func() bool { return q.Waiting() == 1 })
	start := time.Now()
	tr := q.Enqueue(Trigger{Kind: KindManual}, []string{"n1"})
	select {
	case got := <-done:
		if !slices.Equal(triggerIDs(got), []string{tr.ID}) {
			t.Errorf("woke with %v", triggerIDs(got))
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("woke after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken")
	}
	if n := q.Waiting(); n != 0 {
		t.Errorf("%d waiting after delivery", n)
	}
}

func TestQueueAfter(t *testing.T) {
	q := NewQueue(2*time.Minute, nil)
	var all []string
	for range 3 {
		all = append(all, q.Enqueue(Trigger{}, []string{"n1"}).ID)
	}
	tests := []struct {
		after string
		want  []string
	}{
		{"", all}, // a new agent, or one that restarted: everything pending
		{"", all}, // redelivered: the agent dedups by id
		{all[0], all[1:]},
		{all[1], all[2:]},
		{all[2], nil},
		{"t-1-1", all}, // an id from long ago
	}
	for _, tt := range tests {
		got, err := q.Wait(context.Background(), "n1", tt.after, 20*time.Millisecond)
		if err != nil || !slices.Equal(triggerIDs(got), tt.want) {
			t.Errorf("after %q: %v, %v; want %v", tt.after, triggerIDs(got), err, tt.want)
		}
	}
	for _, bad := range []string{"x", "t-1", "t-a-1", "t-1-b"} {
		if _, err := q.Wait(context.Background(), "n1", bad, 0); err == nil {
			t.Errorf("after %q: no error", bad)
		}
	}
}

func TestQueueExpiry(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	q := NewQueue(2*time.Minute, clock.Now)
	tr := q.Enqueue(Trigger{}, []string{"n1"})
	clock.now = clock.now.Add(119 * time.Second)
	if got, _ := q.Wait(context.Background(), "n1", "", 0); !slices.Equal(triggerIDs(got), []string{tr.ID}) {
		t.Fatalf("before expiry: %v", triggerIDs(got))
	}
	clock.now = clock.now.Add(time.Second)
	if got, _ := q.Wait(context.Background(), "n1", "", 0); got != nil {
		t.Errorf("after expiry: %v", triggerIDs(got))
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.nodes) != 0 {
		t.Errorf("%d node queues kept", len(q.nodes))
	}
}

func TestQueueCancel(t *testing.T) {
	q := NewQueue(2*time.Minute, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := q.Wait(ctx, "n1", "", time.Hour)
		done <- err
	}()
	waitFor(t, func() bool { return q.Waiting() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled poll still waits")
	}
	if n := q.Waiting(); n != 0 {
		t.Errorf("%d waiting", n)
	}
}

func TestQueueIDsOrderedWhenClockStepsBack(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	q := NewQueue(2*time.Minute, clock.Now)
	first := q.Enqueue(Trigger{}, []string{"n1"})
	clock.now = clock.now.Add(-time.Second)
	second := q.Enqueue(Trigger{}, []string{"n1"})
	got, _ := q.Wait(context.Background(), "n1", first.ID, 0)
	if !slices.Equal(triggerIDs(got), []string{second.ID}) || second.TimeNS <= first.TimeNS {
		t.Errorf("after %s: %v (second %s)", first.ID, triggerIDs(got), second.ID)
	}
}

func TestQueuePolled(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	q := NewQueue(2*time.Minute, clock.Now)
	q.Wait(context.Background(), "n1", "", 0)
	clock.now = clock.now.Add(time.Minute)
	q.Wait(context.Background(), "n2", "", 0)
	clock.now = clock.now.Add(90 * time.Second) // n1 polled 2.5 min ago, n2 1.5
	polled, not := q.Polled([]string{"n1", "n2", "n3"})
	if !slices.Equal(polled, []string{"n2"}) || !slices.Equal(not, []string{"n1", "n3"}) {
		t.Errorf("polled %v, not %v", polled, not)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
	}
}

func TestQueueClose(t *testing.T) {
	q := NewQueue(2*time.Minute, nil)
	done := make(chan error, 1)
	go func() {
		got, err := q.Wait(context.Background(), "n1", "", time.Hour)
		if got != nil {
			err = fmt.Errorf("got %v", got)
		}
		done <- err
	}()
	waitFor(t, func() bool { return q.Waiting() == 1 })
	q.Close()
	q.Close() // twice: the server may shut down twice
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a poll outlived Close")
	}
	start := time.Now()
	if got, err := q.Wait(context.Background(), "n2", "", time.Hour); got != nil || err != nil || time.Since(start) > time.Second {
		t.Errorf("a poll after Close: %v, %v after %v", got, err, time.Since(start))
	}
}
