package lsn

import "time"

// waiter is one blocked Wait call. The tracker's mutex guards every field
// until done is closed; after that err and observed are read-only.
type waiter struct {
	target   LSN
	since    time.Time // when Wait registered; the poll interval grows with the age of the smallest target
	index    int       // position in the heap; -1 once removed (woken or given up)
	done     chan struct{}
	err      error     // result, set before done is closed
	observed time.Time // when the poll that satisfied the waiter returned; zero if not woken by a poll
}

// waiterHeap is a min-heap by target. A poll that sees replay at R pops the k
// waiters with target ≤ R in O(k log N), and a waiter that gives up removes
// itself in O(log N), so any number of waiters share one poller cheaply. It is
// written out rather than built on container/heap to avoid boxing every
// operation through interfaces on the hot path.
type waiterHeap []*waiter

func (h waiterHeap) less(i, j int) bool { return h[i].target < h[j].target }

func (h waiterHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *waiterHeap) push(w *waiter) {
	w.index = len(*h)
	*h = append(*h, w)
	h.up(w.index)
}

// min returns the waiter with the smallest target, or nil.
func (h waiterHeap) min() *waiter {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

func (h *waiterHeap) pop() *waiter { return h.remove(0) }

func (h *waiterHeap) remove(i int) *waiter {
	old := *h
	n := len(old) - 1
	if i != n {
		old.swap(i, n)
		if !old.down(i, n) {
			old.up(i)
		}
	}
	w := old[n]
	old[n] = nil
	*h = old[:n]
	w.index = -1
	return w
}

func (h waiterHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down sifts element i0 down within h[:n] and reports whether it moved.
func (h waiterHeap) down(i0, n int) bool {
	i := i0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
