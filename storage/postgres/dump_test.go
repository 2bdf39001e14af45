package postgres

import (
	"testing"

	"github.com/govss/vss/storage/internal/dumptest"
)

// newDumpStore opens a Store on a fresh database whose export pages end at
// dumptest.PageBytes.
func newDumpStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s := newStore(t, opts...)
	s.exportPageBytes = dumptest.PageBytes
	return s
}

// TestExportUser runs the shared export checks (see dumptest.CheckExport).
func TestExportUser(t *testing.T) {
	t.Parallel()
	dumptest.CheckExport(t, newDumpStore(t))
}

// TestImport runs the shared import checks (see dumptest.CheckImport).
func TestImport(t *testing.T) {
	t.Parallel()
	dumptest.CheckImport(t, newDumpStore(t))
}

// TestImportQuota runs the shared quota check of imports.
func TestImportQuota(t *testing.T) {
	t.Parallel()
	dumptest.CheckImportQuota(t, newDumpStore(t))
}

// TestAbortAndDelete runs the shared checks of giving an import up and of deleting a
// store and a user (see dumptest.CheckAbortAndDelete).
func TestAbortAndDelete(t *testing.T) {
	t.Parallel()
	dumptest.CheckAbortAndDelete(t, newDumpStore(t))
}
