package storage

import "context"

// ExportStore is one store of an export: its id and its global version, absent when
// the store never set one.
type ExportStore struct {
	ID               string
	GlobalVersion    int64
	HasGlobalVersion bool
}

// ExportVisitor receives a user's data from Exporter.ExportUser, in the order of the
// dump format (docs/dump-format.md): stores in increasing store id order (bytes), and
// within a store the entries oldest first, each with its version and its value as
// stored. A dump.Writer behind a small adapter is one.
type ExportVisitor interface {
	// BeginStore opens a store.
	BeginStore(s ExportStore) error
	// Entry is the next entry of the open store. The visitor may keep kv.Value.
	Entry(kv KeyValue) error
	// EndStore closes the open store.
	EndStore() error
}

// Exporter is implemented by stores that export a user's data for the dump format. It
// is a room of its own beside Store: the service's core never calls it.
type Exporter interface {
	// ExportUser reads every store of user in one consistent snapshot and hands it to v,
	// one page at a time (see ExportPageBytes), so that its memory does not grow with
	// the user's data. An error of v stops the export and is returned.
	ExportUser(ctx context.Context, user string, v ExportVisitor) error
}

// Export pages: an exporter reads a store's entries a page at a time, and a page ends at
// whichever comes first of ExportPageRows entries and ExportPageBytes of values, so that
// the values an export holds at a time stay near ExportPageBytes however large the
// user's data is. A single value larger than the budget is still one page.
const (
	// ExportPageBytes is the byte budget of a page's values.
	ExportPageBytes = 4 << 20
	// ExportPageRows is the most entries of a page.
	ExportPageRows = 256
)

// ExportPageLen returns how many of the entries whose value sizes are given, in order,
// make the next page of an export under budget bytes: every entry whose predecessors in
// the page total less than budget, and at least one.
func ExportPageLen(sizes []int64, budget int64) int {
	var total int64
	for i, n := range sizes {
		if i > 0 && total >= budget {
			return i
		}
		total += n
	}
	return len(sizes)
}
