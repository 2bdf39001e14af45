package server

import (
	"math/bits"
	"sync"
)

// Buffers are kept in power-of-two size classes from 2^minPoolShift to 2^maxPoolShift
// bytes; a larger body gets a buffer of its own, left to the garbage collector (a pool
// must not pin a few MB per size class for the rare network graph).
const (
	minPoolShift = 12 // 4 KiB
	maxPoolShift = 20 // 1 MiB
)

// bufferPool is a set of sync.Pools of byte slices, one per size class. The VSS HTTP API
// reads request bodies into its buffers (handler.bodies). A request's values are copied
// out of its body when it is decoded, so the body's buffer can serve the next request at
// once: without the pool every byte a wallet uploads would be garbage twice (body and
// decoded value), and the garbage collector would run that much more often under writes
// of channel monitors (tens to hundreds of KB each). The zero value is ready to use.
type bufferPool struct {
	classes [maxPoolShift - minPoolShift + 1]sync.Pool
}

// class returns the size class whose buffers hold n bytes, and false when n is larger
// than the largest class.
func class(n int) (int, bool) {
	if n <= 1<<minPoolShift {
		return 0, true
	}
	shift := bits.Len(uint(n - 1))
	if shift > maxPoolShift {
		return 0, false
	}
	return shift - minPoolShift, true
}

// get returns an empty slice with a capacity of at least n.
func (p *bufferPool) get(n int) []byte {
	c, ok := class(n)
	if !ok {
		return make([]byte, 0, n)
	}
	if b, _ := p.classes[c].Get().(*[]byte); b != nil {
		return (*b)[:0]
	}
	return make([]byte, 0, 1<<(c+minPoolShift))
}

// put hands b back for reuse; b must not be used afterwards. Slices whose capacity is not
// exactly a class's (grown by append, or larger than the largest class) are dropped.
func (p *bufferPool) put(b []byte) {
	c, ok := class(cap(b))
	if !ok || cap(b) != 1<<(c+minPoolShift) {
		return
	}
	b = b[:0]
	p.classes[c].Put(&b)
}
