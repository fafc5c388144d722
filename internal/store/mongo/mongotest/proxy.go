package mongotest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// serializer is a wire-protocol proxy between the tests' clients and FerretDB. It
// passes every message through unchanged, but lets only one command that modifies
// existing documents (update, findAndModify, delete) be in flight at a time per
// collection name.
//
// Why: MongoDB applies a single-document write atomically — the filter is
// evaluated and the document written as one step — and the store relies on that
// (conditional updates decide races; see the package comment of
// internal/store/mongo). FerretDB v1 does not: its update and findAndModify read
// the matching documents, modify them in Go and write them back by _id in a
// separate step (FerretDB issue #3040), so two conditional updates of one
// document can both succeed and one can silently overwrite the other. With these
// commands serialized, FerretDB honours the single-document atomicity the store
// is written for, and the tests check the store rather than FerretDB's races.
// Inserts need no help: a unique index decides them inside one SQLite statement.
// Reads are never held up.
type serializer struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup

	mu    sync.Mutex
	locks map[string]*sync.Mutex // by collection name: held from a modifying request to its reply
	cut   map[string]int         // "db.collection" → active FailInserts on it
	down  bool                   // Server.Stop: connections are refused (setDown)
	live  map[net.Conn]struct{}  // the connections served, both sides
}

// setDown cuts every connection served and refuses new ones while down is
// set. Server.Stop sets it before it stops FerretDB, so that the clients see
// what a mongod's crash shows them (connections dropping, a command in flight
// without an answer) rather than what FerretDB answers commands in flight
// when it is stopped: InternalError "context canceled", which no MongoDB
// sends.
func (p *serializer) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.live {
			_ = c.Close()
		}
	}
}

// track registers the connections of one client while it is served; it
// reports false when the proxy is down (the caller closes them).
func (p *serializer) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range conns {
		p.live[c] = struct{}{}
	}
	return true
}

func (p *serializer) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.live, c)
	}
}

// lock returns the lock of a collection name (of any database: coarser than
// needed, and simple).
func (p *serializer) lock(coll string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.locks[coll]
	if l == nil {
		l = new(sync.Mutex)
		p.locks[coll] = l
	}
	return l
}

// startSerializer listens on a free local port and forwards to upstream
// ("host:port").
func startSerializer(upstream string) (*serializer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &serializer{ln: ln, upstream: upstream, locks: map[string]*sync.Mutex{}, cut: map[string]int{},
		live: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// addr is the address clients connect to.
func (p *serializer) addr() string { return p.ln.Addr().String() }

// close stops accepting and waits for the connections to end (their upstream
// side closes when FerretDB stops).
func (p *serializer) close() {
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *serializer) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// conn is one client connection and its upstream twin. The driver sends one
// request at a time on a connection and waits for the reply, but a server may
// also push replies (streaming hello), so the two directions are copied
// independently and the lock is released when the reply to the held request
// passes.
type conn struct {
	p      *serializer
	mu     sync.Mutex
	held   *sync.Mutex // the collection lock held for the request heldID
	heldID int32
}

// hold takes a collection's lock for the request with the given id.
func (c *conn) hold(coll string, requestID int32) {
	l := c.p.lock(coll)
	l.Lock()
	c.mu.Lock()
	c.held, c.heldID = l, requestID
	c.mu.Unlock()
}

// release lets the lock go when responseTo answers the held request, or
// whatever it answers when all is set (the connection ends).
func (c *conn) release(responseTo int32, all bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil && (all || responseTo == c.heldID) {
		c.held.Unlock()
		c.held = nil
	}
}

func (p *serializer) serve(client net.Conn) {
	defer client.Close()
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(client, up) {
		return
	}
	defer p.untrack(client, up)
	c := &conn{p: p}
	defer c.release(0, true)

	done := make(chan struct{})
	go func() {
		defer close(done)
		defer client.Close() // unblocks the other direction
		for {
			msg, err := readMessage(up)
			if err != nil {
				return
			}
			c.release(int32(binary.LittleEndian.Uint32(msg[8:12])), false)
			if _, err := client.Write(msg); err != nil {
				return
			}
		}
	}()
	for {
		msg, err := readMessage(client)
		if err != nil {
			break
		}
		if p.cuts(msg) {
			break // as a network failure: the client sees the connection drop
		}
		if coll, ok := modifies(msg); ok {
			c.hold(coll, int32(binary.LittleEndian.Uint32(msg[4:8])))
		}
		if _, err := up.Write(msg); err != nil {
			break
		}
	}
	_ = up.Close() // unblocks the other direction
	<-done
}

// maxMessage bounds a wire message (MongoDB's own limit is 48 MB).
const maxMessage = 64 << 20

// readMessage reads one length-prefixed wire message, header included.
func readMessage(r io.Reader) ([]byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(head[:]))
	if n < 16 || n > maxMessage {
		return nil, fmt.Errorf("wire message of %d bytes", n)
	}
	msg := make([]byte, n)
	copy(msg, head[:])
	if _, err := io.ReadFull(r, msg[4:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// cuts reports whether msg is an insert into a collection FailInserts cut off.
func (p *serializer) cuts(msg []byte) bool {
	p.mu.Lock()
	n := len(p.cut)
	p.mu.Unlock()
	if n == 0 || len(msg) < 21 || binary.LittleEndian.Uint32(msg[12:16]) != opMsg {
		return false
	}
	name, coll, err := command(msg[20:])
	if err != nil || name != "insert" {
		return false
	}
	db, _ := bodyOf(msg[20:]).Lookup("$db").StringValueOK()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut[db+"."+coll] > 0
}

// bodyOf returns the body section (kind 0) among the OP_MSG sections, nil if
// there is none.
func bodyOf(sections []byte) bson.Raw {
	for len(sections) > 5 {
		kind := sections[0]
		size := int(binary.LittleEndian.Uint32(sections[1:5]))
		if size < 5 || size > len(sections)-1 {
			return nil
		}
		if kind == 0 {
			return bson.Raw(sections[1 : 1+size])
		}
		sections = sections[1+size:]
	}
	return nil
}

// Wire protocol constants.
const (
	opMsg      = 2013
	moreToCome = 1 << 1
)

// modifies reports whether msg is an OP_MSG request that runs update,
// findAndModify or delete and expects a reply, and on which collection. (The
// command is the first element of the body, the section of kind 0, and its value
// names the collection.)
func modifies(msg []byte) (coll string, ok bool) {
	if len(msg) < 21 || binary.LittleEndian.Uint32(msg[12:16]) != opMsg {
		return "", false
	}
	if binary.LittleEndian.Uint32(msg[16:20])&moreToCome != 0 {
		return "", false // no reply will come to release the lock
	}
	name, coll, err := command(msg[20:])
	if err != nil {
		return "", false
	}
	switch name {
	case "update", "findAndModify", "findandmodify", "delete":
		return coll, true
	}
	return "", false
}

// command finds the body section among the OP_MSG sections and returns its first
// key and, when that element is a string, its value.
func command(sections []byte) (name, value string, err error) {
	for len(sections) > 0 {
		kind := sections[0]
		sections = sections[1:]
		if len(sections) < 4 {
			return "", "", errors.New("short section")
		}
		size := int(binary.LittleEndian.Uint32(sections[:4]))
		if size < 5 || size > len(sections) {
			return "", "", errors.New("bad section size")
		}
		if kind != 0 {
			sections = sections[size:] // kind 1: int32 size covers the sequence
			continue
		}
		// A BSON document: int32 size, then elements: type byte, cstring key,
		// value (a string is int32 length, bytes, NUL).
		doc := sections[4:size]
		if len(doc) < 2 {
			return "", "", errors.New("empty body")
		}
		typ, rest := doc[0], doc[1:]
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			return "", "", errors.New("unterminated key")
		}
		name, rest = string(rest[:end]), rest[end+1:]
		if typ == 0x02 && len(rest) >= 4 {
			n := int(binary.LittleEndian.Uint32(rest[:4]))
			if n >= 1 && 4+n <= len(rest) {
				value = string(rest[4 : 4+n-1])
			}
		}
		return name, value, nil
	}
	return "", "", errors.New("no body section")
}
