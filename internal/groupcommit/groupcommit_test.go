package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is a Commit that records its groups and can be held: while
// hold is set, each commit waits to be let go through it.
type recorder struct {
	mu      sync.Mutex
	groups  [][]int
	running int // commits under way
	most    int // the most commits ever under way at once
	fail    map[int]error
	hold    chan struct{}
	started chan []int // if set, told of each commit as it starts
}

func (r *recorder) commit(_ context.Context, group []int) error {
	r.mu.Lock()
	r.groups = append(r.groups, slices.Clone(group))
	r.running++
	r.most = max(r.most, r.running)
	n := len(r.groups)
	r.mu.Unlock()
	if r.started != nil {
		r.started <- slices.Clone(group)
	}
	if r.hold != nil {
		<-r.hold
	}
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
	return r.fail[n]
}

func (r *recorder) recorded() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.groups)
}

// queued returns the number of items waiting in g's queue.
func queued[T any](g *Group[T]) int { return g.Queued() }

// waitQueued waits until g's queue holds n items.
func waitQueued[T any](t *testing.T, g *Group[T], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queued(g) != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d items, want %d", queued(g), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// submit calls g.Do(item) in a goroutine and returns the channel of its
// error.
func submit[T any](g *Group[T], item T) chan error {
	c := make(chan error, 1)
	go func() { c <- g.Do(context.Background(), item) }()
	return c
}

// TestNextGroup checks that the callers arriving while a group commits
// form the next group, together and in their order of arrival.
func TestNextGroup(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan []int)}
	g := &Group[int]{Commit: r.commit}
	first := submit(g, 0)
	<-r.started
	var errs []chan error
	for i := 1; i <= 5; i++ {
		errs = append(errs, submit(g, i))
		waitQueued(t, g, i) // so that the order of arrival is known
	}
	r.hold <- struct{}{} // the first group commits
	<-r.started          // the leader takes the next
	r.hold <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for _, c := range errs {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if got, want := r.recorded(), [][]int{{0}, {1, 2, 3, 4, 5}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("groups %v, want %v", got, want)
	}
}

// TestGroupError checks that a failing group releases every caller of
// that group with its error, and only of that group.
func TestGroupError(t *testing.T) {
	errDown := errors.New("database down")
	r := &recorder{hold: make(chan struct{}), started: make(chan []int), fail: map[int]error{2: errDown}}
	g := &Group[int]{Commit: r.commit}
	first := submit(g, 0)
	<-r.started
	var second []chan error
	for i := 1; i <= 4; i++ {
		second = append(second, submit(g, i))
	}
	waitQueued(t, g, 4)
	r.hold <- struct{}{}
	<-r.started // the second group, which fails
	var third []chan error
	for i := 5; i <= 7; i++ {
		third = append(third, submit(g, i))
	}
	waitQueued(t, g, 3)
	r.hold <- struct{}{}
	<-r.started
	r.hold <- struct{}{}
	if err := <-first; err != nil {
		t.Errorf("first group: %v", err)
	}
	for i, c := range second {
		if err := <-c; !errors.Is(err, errDown) {
			t.Errorf("item %d of the failed group: error %v, want %v", i+1, err, errDown)
		}
	}
	for i, c := range third {
		if err := <-c; err != nil {
			t.Errorf("item %d of the group after: %v", i+5, err)
		}
	}
}

// TestOutcomes checks that each caller sees the outcome Commit set in its
// own item, under many concurrent callers (run with -race), and that every
// item is committed once, in order within its group.
func TestOutcomes(t *testing.T) {
	type item struct {
		n   int
		out string
	}
	var mu sync.Mutex
	committed := map[int]int{}
	groups := 0
	g := &Group[*item]{Max: 16, Commit: func(_ context.Context, group []*item) error {
		if len(group) > 16 {
			t.Errorf("group of %d items, Max 16", len(group))
		}
		mu.Lock()
		defer mu.Unlock()
		groups++
		for _, it := range group {
			committed[it.n]++
			it.out = fmt.Sprintf("committed %d", it.n)
		}
		time.Sleep(100 * time.Microsecond)
		return nil
	}}
	const n = 500
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			it := &item{n: i}
			if err := g.Do(t.Context(), it); err != nil {
				t.Error(err)
			}
			if want := fmt.Sprintf("committed %d", i); it.out != want {
				t.Errorf("item %d: outcome %q, want %q", i, it.out, want)
			}
		})
	}
	wg.Wait()
	if len(committed) != n {
		t.Errorf("%d items committed, want %d", len(committed), n)
	}
	for i, c := range committed {
		if c != 1 {
			t.Errorf("item %d committed %d times", i, c)
		}
	}
	if groups >= n {
		t.Errorf("%d groups for %d concurrent items: nothing was grouped", groups, n)
	}
}

// TestLeaders checks that at most Leaders groups commit at once, and that
// as many do when there is work for them.
func TestLeaders(t *testing.T) {
	for _, leaders := range []int{0, 1, 3} {
		t.Run(fmt.Sprint(leaders), func(t *testing.T) {
			want := max(1, leaders)
			r := &recorder{hold: make(chan struct{}), started: make(chan []int, 64)}
			// One item per group, so that every queued item waits for a leader.
			g := &Group[int]{Commit: r.commit, Max: 1, Leaders: leaders}
			const n = 10
			var errs []chan error
			for i := range n {
				errs = append(errs, submit(g, i))
			}
			for range want {
				<-r.started
			}
			waitQueued(t, g, n-want)
			time.Sleep(10 * time.Millisecond) // a leader too many would start now
			r.mu.Lock()
			running := r.running
			r.mu.Unlock()
			if running != want {
				t.Errorf("%d groups committing, want %d", running, want)
			}
			close(r.hold)
			for _, c := range errs {
				if err := <-c; err != nil {
					t.Fatal(err)
				}
			}
			if r.most != want {
				t.Errorf("at most %d groups committed at once, want %d", r.most, want)
			}
			if got := len(r.recorded()); got != n {
				t.Errorf("%d groups, want %d", got, n)
			}
		})
	}
}

// TestTake checks a Take that defers items: a group holds at most one item
// per key, and the items it leaves keep their place; Max bounds a group
// as well; and a refused first item is taken all the same.
func TestTake(t *testing.T) {
	type item struct {
		key string
		n   int
	}
	onePerKey := func() func(item) bool {
		seen := map[string]bool{}
		return func(it item) bool {
			if seen[it.key] {
				return false
			}
			seen[it.key] = true
			return true
		}
	}
	a1, a2, a3 := item{"a", 1}, item{"a", 2}, item{"a", 3}
	b1, b2, c1, d1 := item{"b", 1}, item{"b", 2}, item{"c", 1}, item{"d", 1}
	for _, tt := range []struct {
		name  string
		take  func() func(item) bool
		max   int
		queue []item
		want  [][]item
	}{
		{"one per key", onePerKey, 0, []item{a1, a2, b1, a3, b2, c1},
			[][]item{{a1, b1, c1}, {a2, b2}, {a3}}},
		{"one per key, at most two", onePerKey, 2, []item{a1, a2, b1, a3, b2, c1, d1},
			[][]item{{a1, b1}, {a2, b2}, {a3, c1}, {d1}}},
		{"at most three", nil, 3, []item{a1, a2, b1, a3, b2, c1, d1},
			[][]item{{a1, a2, b1}, {a3, b2, c1}, {d1}}},
		{"refuses all", func() func(item) bool { return func(item) bool { return false } }, 0, []item{a1, b1, c1},
			[][]item{{a1}, {b1}, {c1}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var groups [][]item
			started, hold := make(chan struct{}), make(chan struct{})
			g := &Group[item]{Take: tt.take, Max: tt.max, Commit: func(_ context.Context, group []item) error {
				if group[0] == (item{}) {
					close(started)
					<-hold // the first commit holds the queue until it is full
					return nil
				}
				mu.Lock()
				groups = append(groups, slices.Clone(group))
				mu.Unlock()
				return nil
			}}
			first := submit(g, item{})
			<-started
			var errs []chan error
			for i, it := range tt.queue {
				errs = append(errs, submit(g, it))
				waitQueued(t, g, i+1)
			}
			close(hold)
			for _, c := range append(errs, first) {
				if err := <-c; err != nil {
					t.Fatal(err)
				}
			}
			if !slices.EqualFunc(groups, tt.want, slices.Equal) {
				t.Errorf("groups %v, want %v", groups, tt.want)
			}
		})
	}
}

type ctxKey struct{}

// TestContext checks that a group commits with the leader's context
// values but not its cancellation, and that a caller whose context ends
// while queued still waits for its item to be decided.
func TestContext(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan []int)}
	var ctxErrs []error
	var values []any
	g := &Group[int]{Commit: func(ctx context.Context, group []int) error {
		err := r.commit(ctx, group)
		ctxErrs = append(ctxErrs, ctx.Err())
		values = append(values, ctx.Value(ctxKey{}))
		return err
	}}
	lctx, lcancel := context.WithCancel(context.WithValue(t.Context(), ctxKey{}, "leader"))
	first := make(chan error, 1)
	go func() { first <- g.Do(lctx, 0) }()
	<-r.started
	fctx, fcancel := context.WithCancel(t.Context())
	follower := make(chan error, 1)
	go func() { follower <- g.Do(fctx, 1) }()
	waitQueued(t, g, 1)
	lcancel()
	fcancel()
	select {
	case err := <-follower:
		t.Fatalf("a queued caller returned (%v) before its item was decided", err)
	case <-time.After(10 * time.Millisecond):
	}
	r.hold <- struct{}{}
	<-r.started
	r.hold <- struct{}{}
	if err := <-first; err != nil {
		t.Errorf("leader: %v", err)
	}
	if err := <-follower; err != nil {
		t.Errorf("follower: %v", err)
	}
	if got := r.recorded(); !slices.EqualFunc(got, [][]int{{0}, {1}}, slices.Equal) {
		t.Errorf("groups %v, want both items committed", got)
	}
	for i := range ctxErrs {
		if ctxErrs[i] != nil || values[i] != "leader" {
			t.Errorf("group %d committed with context error %v and value %v, want no error and the leader's value", i, ctxErrs[i], values[i])
		}
	}
}

// TestAfter checks that After runs with each group once its callers are
// released, and before the leader takes the next group.
func TestAfter(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan []int, 8)}
	g := &Group[int]{Commit: r.commit}
	var (
		after     [][]int
		followers []chan error
		third     chan error
	)
	g.After = func(_ context.Context, group []int) {
		after = append(after, slices.Clone(group))
		if group[0] != 1 {
			return
		}
		for _, c := range followers {
			if err := <-c; err != nil {
				t.Error(err)
			}
		}
		// An item arriving now waits: the leader is still in After.
		third = submit(g, 3)
		deadline := time.Now().Add(10 * time.Second)
		for queued(g) != 1 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := len(r.recorded()); queued(g) != 1 || n != 2 {
			t.Errorf("during After: %d queued, %d groups committed; want 1 and 2", queued(g), n)
		}
	}
	first := submit(g, 0)
	<-r.started
	for i := 1; i <= 2; i++ {
		followers = append(followers, submit(g, i))
		waitQueued(t, g, i)
	}
	close(r.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	if want := [][]int{{0}, {1, 2}, {3}}; !slices.EqualFunc(after, want, slices.Equal) {
		t.Errorf("After saw %v, want %v", after, want)
	}
}

// TestObserve checks that Observe is told of every group, after its
// Commit, with the group's size, and that Queued counts the items waiting
// for the next group, not those of the group committing.
func TestObserve(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan []int, 4)}
	var mu sync.Mutex
	var sizes []int
	var took []time.Duration
	g := &Group[int]{Commit: r.commit, Observe: func(n int, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		sizes, took = append(sizes, n), append(took, d)
	}}
	first := submit(g, 1)
	<-r.started // 1 commits alone, held
	if n := g.Queued(); n != 0 {
		t.Errorf("Queued = %d while the first group commits, want 0", n)
	}
	rest := []chan error{submit(g, 2), submit(g, 3)}
	waitQueued(t, g, 2)
	time.Sleep(5 * time.Millisecond) // so the first commit's time is measurable
	r.hold <- struct{}{}
	<-r.started // 2 and 3 together
	r.hold <- struct{}{}
	for _, c := range append(rest, first) {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sizes, []int{1, 2}) {
		t.Errorf("observed sizes %v, want [1 2]", sizes)
	}
	if len(took) != 2 || took[0] < 5*time.Millisecond {
		t.Errorf("observed durations %v, want the first at least 5ms (it was held)", took)
	}
	if n := g.Queued(); n != 0 {
		t.Errorf("Queued = %d once idle", n)
	}
}
