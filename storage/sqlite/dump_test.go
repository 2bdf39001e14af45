package sqlite

import (
	"testing"

	"github.com/govss/vss/storage/internal/dumptest"
)

// forEachDumpMode runs f against a fresh Store of every mode whose export pages end at
// dumptest.PageBytes.
func forEachDumpMode(t *testing.T, f func(t *testing.T, s *Store)) {
	forEachMode(t, func(t *testing.T, s *Store) {
		s.exportPageBytes = dumptest.PageBytes
		f(t, s)
	})
}

// TestExportUser runs the shared export checks (see dumptest.CheckExport).
func TestExportUser(t *testing.T) {
	t.Parallel()
	forEachDumpMode(t, func(t *testing.T, s *Store) { dumptest.CheckExport(t, s) })
}

// TestImport runs the shared import checks (see dumptest.CheckImport).
func TestImport(t *testing.T) {
	t.Parallel()
	forEachDumpMode(t, func(t *testing.T, s *Store) { dumptest.CheckImport(t, s) })
}

// TestImportQuota runs the shared quota check of imports.
func TestImportQuota(t *testing.T) {
	t.Parallel()
	forEachDumpMode(t, func(t *testing.T, s *Store) { dumptest.CheckImportQuota(t, s) })
}

// TestAbortAndDelete runs the shared checks of giving an import up and of deleting a
// store and a user (see dumptest.CheckAbortAndDelete).
func TestAbortAndDelete(t *testing.T) {
	t.Parallel()
	forEachDumpMode(t, func(t *testing.T, s *Store) { dumptest.CheckAbortAndDelete(t, s) })
}
