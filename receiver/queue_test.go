package receiver

import (
	"fmt"
	"slices"
	"testing"

	"github.com/roomcast/roomcast/protocol"
)

func tracks(n int) []string {
	var t []string
	for i := 0; i < n; i++ {
		t = append(t, fmt.Sprintf("roomcast:track:%d", i))
	}
	return t
}

// playAll advances until the end and returns what played.
func playAll(q *queue, limit int) []string {
	out := []string{q.current()}
	for i := 0; i < limit && q.advance(false); i++ {
		out = append(out, q.current())
	}
	return out
}

func TestQueueOrderAndRepeat(t *testing.T) {
	cases := []struct {
		name   string
		n, at  int
		repeat protocol.Repeat
		limit  int
		want   []int
	}{
		{"from start", 3, 0, protocol.RepeatOff, 10, []int{0, 1, 2}},
		{"from offset", 4, 2, protocol.RepeatOff, 10, []int{2, 3}},
		{"repeat context wraps", 3, 1, protocol.RepeatContext, 4, []int{1, 2, 0, 1, 2}},
		{"repeat track holds", 3, 1, protocol.RepeatTrack, 3, []int{1, 1, 1, 1}},
	}
	for _, c := range cases {
		q, err := newQueue("", tracks(c.n), c.at)
		if err != nil {
			t.Fatal(err)
		}
		q.repeat = c.repeat
		got := playAll(q, c.limit)
		var want []string
		for _, i := range c.want {
			want = append(want, tracks(c.n)[i])
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: played %v, want %v", c.name, got, want)
		}
	}
	// Manual skip leaves a repeated track.
	q, _ := newQueue("", tracks(3), 0)
	q.repeat = protocol.RepeatTrack
	if !q.advance(true) || q.current() != tracks(3)[1] {
		t.Errorf("skip with repeat track: now %s", q.current())
	}
	if _, err := newQueue("", nil, 0); err == nil {
		t.Error("empty queue accepted")
	}
	if _, err := newQueue("", tracks(2), 2); err == nil {
		t.Error("offset past the end accepted")
	}
}

func TestQueueBackAndUserQueue(t *testing.T) {
	q, _ := newQueue("", tracks(3), 1)
	q.back()
	if q.current() != tracks(3)[0] {
		t.Fatalf("back: %s", q.current())
	}
	q.back() // stays at the start
	if q.current() != tracks(3)[0] {
		t.Fatalf("back at start: %s", q.current())
	}
	q.add("roomcast:track:x")
	q.add("roomcast:track:y")
	if n, _ := q.peekNext(); n != "roomcast:track:x" {
		t.Fatalf("peek with user queue: %s", n)
	}
	got := playAll(q, 10)
	want := []string{tracks(3)[0], "roomcast:track:x", "roomcast:track:y", tracks(3)[1], tracks(3)[2]}
	if !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v", got, want)
	}
}

func TestShuffleFairStableAndTransferable(t *testing.T) {
	const n = 20
	q, _ := newQueue("roomcast:album:a", tracks(n), 7)
	q.setShuffle(true, 12345)
	if q.current() != tracks(n)[7] {
		t.Fatal("turning shuffle on changed the current track")
	}
	// Play three, then "transfer": rebuild from the state.
	for i := 0; i < 3; i++ {
		q.advance(false)
	}
	var st protocol.PlayerState
	q.fill(&st)
	q2, err := restoreQueue(&st, tracks(n))
	if err != nil {
		t.Fatal(err)
	}
	rest1, rest2 := playAll(q, 100), playAll(q2, 100)
	if !slices.Equal(rest1, rest2) {
		t.Fatalf("order differs after transfer:\n%v\n%v", rest1, rest2)
	}
	// Fair: a whole cycle from a fresh shuffle plays every track once.
	q3, _ := newQueue("", tracks(n), 7)
	q3.setShuffle(true, 999)
	all := playAll(q3, 100)
	if len(all) != n {
		t.Fatalf("shuffle cycle played %d tracks, want %d", len(all), n)
	}
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	want := slices.Clone(tracks(n))
	slices.Sort(want)
	if !slices.Equal(sorted, want) {
		t.Fatalf("shuffle cycle is not a permutation: %v", all)
	}
	if slices.Equal(all, tracks(n)[7:]) {
		t.Fatal("shuffle did not shuffle")
	}
	// Different seeds give different orders; turning shuffle off keeps the
	// current track and continues in context order.
	q4, _ := newQueue("", tracks(n), 7)
	q4.setShuffle(true, 1000)
	if slices.Equal(playAll(q4, 100), all) {
		t.Fatal("two seeds gave the same order")
	}
	q5, _ := newQueue("", tracks(n), 7)
	q5.setShuffle(true, 5)
	q5.advance(false)
	cur := q5.index
	q5.setShuffle(false, 0)
	if q5.index != cur {
		t.Fatal("shuffle off changed the current track")
	}
	if n, _ := q5.peekNext(); cur+1 < 20 && n != tracks(20)[cur+1] {
		t.Fatalf("after shuffle off the next is %s, want the context's next", n)
	}
}

func TestShuffleDistribution(t *testing.T) {
	// Over many seeds, every track is equally likely to follow the anchor.
	const n, runs = 5, 20000
	counts := make([]int, n)
	for s := int64(1); s <= runs; s++ {
		q, _ := newQueue("", tracks(n), 0)
		q.setShuffle(true, s)
		o := q.order()
		if o[0] != 0 {
			t.Fatal("anchor not first")
		}
		counts[o[1]]++
	}
	if counts[0] != 0 {
		t.Fatal("the anchor came twice")
	}
	for i := 1; i < n; i++ {
		if c := float64(counts[i]) / runs; c < 0.23 || c > 0.27 {
			t.Errorf("track %d follows the anchor with frequency %.3f, want 0.25", i, c)
		}
	}
}
