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
	// holding a bounded number of entries in memory at a time. An error of v stops the
	// export and is returned.
	ExportUser(ctx context.Context, user string, v ExportVisitor) error
}
