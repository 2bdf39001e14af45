// Package server is the VSS service and its two HTTP bindings: Connect (with gRPC and
// gRPC-Web) and the existing VSS HTTP API that deployed wallets call.
//
// Every rule of the VSS contract that does not depend on the database (validation,
// limits, the reserved global_version key, page tokens) is written once, in Service. The
// bindings only decode requests, call Service and translate its errors.
package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/storage"
)

// Limits of the VSS contract. They match the reference PostgreSQL schema, so that data
// can move between servers.
const (
	// MaxStoreIDLength is the longest store id, in characters.
	MaxStoreIDLength = 120
	// MaxKeyLength is the longest key, in characters.
	MaxKeyLength = 600
	// MaxEntryBytes bounds the user identity, store id and key of one entry together,
	// in bytes of UTF-8. Characters beyond the ASCII range take up to 4 bytes each, and
	// PostgreSQL refuses an index entry larger than 2704 bytes. An entry of the listing
	// index (the largest index of vss_db) holds the user, the store id, the key, a sort
	// order and a version, with their headers and alignment: at most about 60 bytes
	// besides the three strings, so 2560 bytes of strings fit with a margin of about 80
	// bytes. The rule is the same on every store. It refuses no key within
	// MaxKeyLength for a signature user (66 bytes) in a store id of up to 94 bytes, and
	// no key of up to 1600 bytes whatever the user and store id.
	MaxEntryBytes = 2560
	// MaxItemsPerPut is the largest number of transaction and delete items in one
	// PutObjects.
	MaxItemsPerPut = 1000
	// MaxPageSize is the largest number of keys in one ListKeyVersions page.
	MaxPageSize = 100
	// MaxUserLength is the longest user identity an Authorizer may return, in characters.
	MaxUserLength = 120
)

// Service implements the VSS operations for authenticated users on top of a
// storage.Store. It is safe for concurrent use.
type Service struct {
	store storage.Store
	log   *slog.Logger
}

// NewService returns a Service storing its data in store and logging to log.
func NewService(store storage.Store, log *slog.Logger) *Service {
	return &Service{store: store, log: log}
}

// GetObject returns the entry stored under req.Key for user.
func (s *Service) GetObject(ctx context.Context, user string, req *vssv1.GetObjectRequest) (*vssv1.GetObjectResponse, error) {
	if err := validateStoreID(req.GetStoreId()); err != nil {
		return nil, err
	}
	if err := validateKey(user, req.GetStoreId(), req.GetKey(), true); err != nil {
		return nil, err
	}
	kv, err := s.store.Get(ctx, user, req.GetStoreId(), req.GetKey())
	if errors.Is(err, storage.ErrNotFound) && req.GetKey() == storage.GlobalVersionKey {
		// A store that never set its global version is at version 0.
		kv, err = storage.KeyValue{Key: storage.GlobalVersionKey}, nil
	}
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	if kv.Key == storage.GlobalVersionKey {
		kv.Value = nil // the global version never carries a value
	}
	return &vssv1.GetObjectResponse{Value: &vssv1.KeyValue{Key: kv.Key, Version: kv.Version, Value: kv.Value}}, nil
}

// PutObjects applies req for user as one atomic write.
func (s *Service) PutObjects(ctx context.Context, user string, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error) {
	if err := validateStoreID(req.GetStoreId()); err != nil {
		return nil, err
	}
	items, deletes := req.GetTransactionItems(), req.GetDeleteItems()
	if n := len(items) + len(deletes); n > MaxItemsPerPut {
		return nil, invalidf("too many items: %d transaction and delete items, at most %d per request", n, MaxItemsPerPut)
	}
	put := storage.PutRequest{
		StoreID: req.GetStoreId(),
		Puts:    make([]storage.KeyValue, 0, len(items)+1),
		Deletes: make([]storage.KeyValue, 0, len(deletes)),
	}
	seen := make(map[string]struct{}, len(items)+len(deletes))
	check := func(field string, i int, kv *vssv1.KeyValue, validateVersion func(int64) error) error {
		if kv == nil {
			return invalidf("%s[%d] is missing", field, i)
		}
		if err := validateKey(user, req.GetStoreId(), kv.GetKey(), false); err != nil {
			return invalidf("%s[%d]: %s", field, i, err.(*Error).Message)
		}
		if err := validateVersion(kv.GetVersion()); err != nil {
			return invalidf("%s[%d]: %s", field, i, err.(*Error).Message)
		}
		if _, dup := seen[kv.GetKey()]; dup {
			return invalidf("%s[%d]: key %s appears more than once in the request", field, i, QuoteInput(kv.GetKey()))
		}
		seen[kv.GetKey()] = struct{}{}
		return nil
	}
	for i, kv := range items {
		if err := check("transaction_items", i, kv, validateWriteVersion); err != nil {
			return nil, err
		}
		put.Puts = append(put.Puts, storage.KeyValue{Key: kv.GetKey(), Version: kv.GetVersion(), Value: kv.GetValue()})
	}
	for i, kv := range deletes {
		if err := check("delete_items", i, kv, validateVersion); err != nil {
			return nil, err
		}
		put.Deletes = append(put.Deletes, storage.KeyValue{Key: kv.GetKey(), Version: kv.GetVersion()})
	}
	if req.GlobalVersion != nil {
		if err := validateWriteVersion(req.GetGlobalVersion()); err != nil {
			return nil, invalidf("global_version: %s", err.(*Error).Message)
		}
		// The global version is a per-store counter checked and bumped exactly like a
		// key version, kept under the reserved key.
		put.Puts = append(put.Puts, storage.KeyValue{Key: storage.GlobalVersionKey, Version: req.GetGlobalVersion()})
	}
	if len(put.Puts) == 0 && len(put.Deletes) == 0 {
		return &vssv1.PutObjectResponse{}, nil
	}
	if err := s.store.Put(ctx, user, put); err != nil {
		return nil, s.classify(ctx, err)
	}
	return &vssv1.PutObjectResponse{}, nil
}

// DeleteObject removes req.KeyValue for user if its version matches; it succeeds either
// way.
func (s *Service) DeleteObject(ctx context.Context, user string, req *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error) {
	if err := validateStoreID(req.GetStoreId()); err != nil {
		return nil, err
	}
	kv := req.GetKeyValue()
	if kv == nil {
		return nil, invalidf("key_value is missing")
	}
	if err := validateKey(user, req.GetStoreId(), kv.GetKey(), false); err != nil {
		return nil, err
	}
	if err := validateVersion(kv.GetVersion()); err != nil {
		return nil, err
	}
	if err := s.store.Delete(ctx, user, req.GetStoreId(), kv.GetKey(), kv.GetVersion()); err != nil {
		return nil, s.classify(ctx, err)
	}
	return &vssv1.DeleteObjectResponse{}, nil
}

// ListKeyVersions returns one page of user's keys in req.StoreId.
func (s *Service) ListKeyVersions(ctx context.Context, user string, req *vssv1.ListKeyVersionsRequest) (*vssv1.ListKeyVersionsResponse, error) {
	if err := validateStoreID(req.GetStoreId()); err != nil {
		return nil, err
	}
	prefix := req.GetKeyPrefix()
	if utf8.RuneCountInString(prefix) > MaxKeyLength {
		return nil, invalidf("key_prefix is longer than %d characters", MaxKeyLength)
	}
	if strings.IndexByte(prefix, 0) >= 0 {
		return nil, invalidf("key_prefix must not contain NUL characters")
	}
	limit := MaxPageSize
	if req.PageSize != nil {
		switch size := req.GetPageSize(); {
		case size < 0:
			return nil, invalidf("page_size must not be negative, got %d", size)
		case size < MaxPageSize:
			limit = int(size)
		}
	}
	first := req.GetPageToken() == ""
	before := storage.ListStart
	if !first {
		var err error
		if before, err = decodePageToken(req.GetPageToken()); err != nil {
			return nil, err
		}
	}
	if limit == 0 && !first {
		return &vssv1.ListKeyVersionsResponse{NextPageToken: new(string)}, nil
	}
	// Ask for one key more than the page holds to learn whether another page follows.
	fetch := limit
	if limit > 0 {
		fetch++
	}
	page, err := s.store.List(ctx, user, storage.ListRequest{
		StoreID:           req.GetStoreId(),
		Prefix:            prefix,
		Before:            before,
		Limit:             fetch,
		WithGlobalVersion: first,
	})
	if err != nil {
		return nil, s.classify(ctx, err)
	}
	resp := &vssv1.ListKeyVersionsResponse{NextPageToken: new(string)}
	if first {
		resp.GlobalVersion = &page.GlobalVersion
	}
	keys := page.Keys
	if len(keys) > limit {
		keys = keys[:limit]
		*resp.NextPageToken = encodePageToken(keys[len(keys)-1].SortOrder)
	}
	resp.KeyVersions = make([]*vssv1.KeyValue, len(keys))
	for i, k := range keys {
		resp.KeyVersions[i] = &vssv1.KeyValue{Key: k.Key, Version: k.Version}
	}
	return resp, nil
}

func validateStoreID(id string) error {
	if utf8.RuneCountInString(id) > MaxStoreIDLength {
		return invalidf("store_id is longer than %d characters", MaxStoreIDLength)
	}
	if strings.IndexByte(id, 0) >= 0 {
		return invalidf("store_id must not contain NUL characters")
	}
	return nil
}

// validateKey checks a key of user's request in storeID (already validated); readable
// tells whether the reserved global version key is allowed (it can be read, but never
// written or deleted directly).
func validateKey(user, storeID, key string, readable bool) error {
	switch {
	case key == "":
		return invalidf("key must not be empty")
	case utf8.RuneCountInString(key) > MaxKeyLength:
		return invalidf("key is longer than %d characters", MaxKeyLength)
	case len(user)+len(storeID)+len(key) > MaxEntryBytes:
		return invalidf("key is %d bytes long in UTF-8; with the user (%d bytes) and the store id (%d bytes) that is more than the %d bytes an entry may take",
			len(key), len(user), len(storeID), MaxEntryBytes)
	case strings.IndexByte(key, 0) >= 0:
		return invalidf("key must not contain NUL characters")
	case key == storage.GlobalVersionKey && !readable:
		return invalidf("key %q is reserved for the store's global version; use the global_version field", storage.GlobalVersionKey)
	}
	return nil
}

func validateVersion(v int64) error {
	if v < -1 {
		return invalidf("version must be -1 (unconditional), 0 (create) or a stored version, got %d", v)
	}
	return nil
}

// validateWriteVersion checks the version of a put item or of the global version: like
// any version, and also one that the write can increment. A conditional write at
// version N stores N+1, so no write can succeed at the largest version: it is refused
// as INVALID_REQUEST whatever is stored, on every store, rather than failing in the
// database or wrapping around. (Deleting a key at that version, or overwriting it
// unconditionally, remains possible.)
func validateWriteVersion(v int64) error {
	if v == math.MaxInt64 {
		return invalidf("version %d is the largest version and cannot be incremented (version -1 writes unconditionally and starts again at 1)", v)
	}
	return validateVersion(v)
}

// Page tokens are the decimal sort order of the last key of the previous page, as the
// reference server issues them, so a listing can continue across a switch of servers.
func encodePageToken(sortOrder int64) string { return strconv.FormatInt(sortOrder, 10) }

func decodePageToken(token string) (int64, error) {
	n, err := strconv.ParseInt(token, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != token { // canonical decimals only: not "+1", "01" or "-0"
		return 0, invalidf("page_token %s was not issued by this server", QuoteInput(token))
	}
	return n, nil
}
