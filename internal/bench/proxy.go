package bench

import (
	"net"
	"sync"
	"sync/atomic"
)

// rtProxy is a TCP proxy on loopback between a database client and PostgreSQL that
// counts round trips: on each connection, every time the client sends bytes after it
// has received bytes (or for the first time) is one round trip. A pipelined
// Parse/Bind/Execute/Sync is one round trip; a statement that needs a prepare first is
// two. It also counts the bytes each way. It knows nothing of the protocol, so it
// measures any server the same way.
type rtProxy struct {
	ln     net.Listener
	target string
	trips  atomic.Int64
	toDB   atomic.Int64
	fromDB atomic.Int64
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newProxy(target string) (*rtProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &rtProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// addr is the proxy's host:port.
func (p *rtProxy) addr() string { return p.ln.Addr().String() }

func (p *rtProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *rtProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *rtProxy) handle(client net.Conn) {
	defer client.Close()
	db, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer db.Close()
	if !p.track(client) || !p.track(db) {
		return
	}
	// replied is true while the last bytes seen went from the database to the client.
	var replied atomic.Bool
	replied.Store(true)
	done := make(chan struct{}, 2)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if replied.Swap(false) {
					p.trips.Add(1)
				}
				p.toDB.Add(int64(n))
				if _, werr := db.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		closeWrite(db)
		done <- struct{}{}
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := db.Read(buf)
			if n > 0 {
				replied.Store(true)
				p.fromDB.Add(int64(n))
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		closeWrite(client)
		done <- struct{}{}
	}()
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, db)
	p.mu.Unlock()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	_ = c.Close()
}

// close stops accepting and cuts every connection.
func (p *rtProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
