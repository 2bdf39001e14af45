// Package transfer moves a user's data, or a whole database's, between a store and a VSS
// dump (docs/dump-format.md): Export writes a store's data as a dump, Import writes a
// dump into a store's empty stores, resumably, and verifies what it wrote by checksum.
// The export and import RPCs, vssctl and vss-server admin all go through it, so that
// the rules of a move live in one place.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/govss/vss/dump"
	"github.com/govss/vss/storage"
)

// writerVisitor hands an export to a dump.Writer.
type writerVisitor struct {
	w    *dump.Writer
	user string
}

func (v writerVisitor) BeginStore(s storage.ExportStore) error {
	return v.w.BeginStore(dump.Store{User: v.user, ID: s.ID, GlobalVersion: s.GlobalVersion, HasGlobalVersion: s.HasGlobalVersion})
}

func (v writerVisitor) Entry(kv storage.KeyValue) error {
	return v.w.Entry(dump.Entry{Key: kv.Key, Version: kv.Version, Value: kv.Value})
}

func (v writerVisitor) EndStore() error {
	_, err := v.w.EndStore()
	return err
}

// header is the header of a dump that a store exports: everything is carried.
func header(producer string, scope dump.Scope, snapshot bool) dump.Header {
	return dump.Header{Producer: producer, Created: time.Now().UTC(), Scope: scope, Snapshot: snapshot,
		ListingOrder: true, Versions: true, GlobalVersions: true}
}

// Export writes every store of user in src to w as a SCOPE_USER dump, read in one
// snapshot, and returns the dump's sum. Its memory does not grow with the user's data.
func Export(ctx context.Context, src storage.Exporter, user string, w io.Writer, producer string) (dump.Sum, error) {
	dw, err := dump.NewWriter(w, header(producer, dump.ScopeUser, true))
	if err != nil {
		return dump.Sum{}, err
	}
	if err := src.ExportUser(ctx, user, writerVisitor{w: dw}); err != nil {
		return dump.Sum{}, err
	}
	return dw.Close()
}

// ExportDatabase writes every store of every user of src to w as a SCOPE_DATABASE dump.
// Each user is read in a snapshot of its own, so the dump is a snapshot of the whole
// database only when nothing writes meanwhile (the header says snapshot = false): it is
// meant for a server that is stopped.
func ExportDatabase(ctx context.Context, src interface {
	storage.Exporter
	storage.Admin
}, w io.Writer, producer string) (dump.Sum, error) {
	users, err := src.Usage(ctx, "")
	if err != nil {
		return dump.Sum{}, err
	}
	dw, err := dump.NewWriter(w, header(producer, dump.ScopeDatabase, false))
	if err != nil {
		return dump.Sum{}, err
	}
	for _, u := range users { // in user order, the dump's store order
		if err := src.ExportUser(ctx, u.User, writerVisitor{w: dw, user: u.User}); err != nil {
			return dump.Sum{}, err
		}
	}
	return dw.Close()
}

// hashVisitor computes the checksum of one exported store.
type hashVisitor struct{ h *dump.StoreHash }

func (v *hashVisitor) BeginStore(s storage.ExportStore) error {
	v.h = dump.NewStoreHash(dump.Store{ID: s.ID, GlobalVersion: s.GlobalVersion, HasGlobalVersion: s.HasGlobalVersion})
	return nil
}

func (v *hashVisitor) Entry(kv storage.KeyValue) error {
	v.h.Add(dump.Entry{Key: kv.Key, Version: kv.Version, Value: kv.Value})
	return nil
}

func (v *hashVisitor) EndStore() error { return nil }

// StoreSum computes the checksum of what store storeID of user holds in src, as a dump
// of it would state it.
func StoreSum(ctx context.Context, src storage.Exporter, user, storeID string) (dump.Sum, error) {
	var v hashVisitor
	if err := src.ExportStore(ctx, user, storeID, &v); err != nil {
		return dump.Sum{}, err
	}
	if v.h == nil {
		return dump.Sum{}, fmt.Errorf("transfer: the export of store %q handed over nothing", storeID)
	}
	return v.h.Sum(), nil
}

// ErrMismatch means that what a store holds after its import does not match the dump's
// checksum of it: it was written during the import, or an interrupted import was
// resumed with a dump of different data. The import is given up.
var ErrMismatch = errors.New("transfer: the imported store does not match the dump")
