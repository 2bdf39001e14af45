// Package encvectors loads compat/rust-client/encryption-vectors.json, the known answers
// for client-side encryption that compat/rust-client computes with vss-client-ng and LDK
// Node's derivation (its layout: compat/rust-client/ENCRYPTION-VECTORS.md). The Go
// client's tests and the cross-language test program (compat/encryption/go) read it.
package encvectors

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// Path is where the file is in the repository, from its root.
const Path = "compat/rust-client/encryption-vectors.json"

// Hex is a byte string written in lowercase hex.
type Hex []byte

// UnmarshalJSON decodes the hex string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// Key32 returns h as a 32-byte key; it panics on another length.
func (h Hex) Key32() [32]byte {
	if len(h) != 32 {
		panic(fmt.Sprintf("encvectors: a key of %d bytes", len(h)))
	}
	return [32]byte(h)
}

// Vectors is the whole file.
type Vectors struct {
	Format            int                `json:"format"`
	Keys              Keys               `json:"keys"`
	ObfuscatedKeys    []ObfuscatedKey    `json:"obfuscated_keys"`
	Sealed            []Sealed           `json:"sealed"`
	LDKStoreKeys      []LDKStoreKey      `json:"ldk_store_keys"`
	LDKSchemaVersion  LDKSchemaVersion   `json:"ldk_schema_version"`
	NegativeStorables []NegativeStorable `json:"negative_storables"`
	NegativeKeys      []NegativeKey      `json:"negative_keys"`
	VersionChecks     []VersionCheck     `json:"version_checks"`
	Fixture           Fixture            `json:"fixture"`
}

// Keys is LDK Node's derivation from a wallet seed.
type Keys struct {
	WalletSeed           Hex    `json:"wallet_seed"`
	BIP32Path            string `json:"bip32_path"`
	VSSSeed              Hex    `json:"vss_seed"`
	PRK                  Hex    `json:"prk"`
	DataEncryptionKey    Hex    `json:"data_encryption_key"`
	ObfuscationMasterKey Hex    `json:"obfuscation_master_key"`
}

// ObfuscatedKey is a KeyObfuscator known answer.
type ObfuscatedKey struct {
	ObfuscationMasterKey Hex    `json:"obfuscation_master_key"`
	Key                  string `json:"key"`
	KeyUTF8              Hex    `json:"key_utf8_hex"`
	Obfuscated           string `json:"obfuscated"`
}

// Sealed is a StorableBuilder known answer with a fixed nonce.
type Sealed struct {
	Name              string `json:"name"`
	DataEncryptionKey Hex    `json:"data_encryption_key"`
	Value             Hex    `json:"value_hex"`
	Version           int64  `json:"version"`
	AAD               Hex    `json:"aad_hex"`
	Nonce             Hex    `json:"nonce_hex"`
	PlaintextBlob     Hex    `json:"plaintext_blob_hex"`
	Ciphertext        Hex    `json:"ciphertext_hex"`
	Tag               Hex    `json:"tag_hex"`
	CipherFormat      string `json:"cipher_format"`
	Storable          Hex    `json:"storable_hex"`
}

// LDKStoreKey is LDK Node's naming of one key in both schema generations.
type LDKStoreKey struct {
	Primary   string    `json:"primary"`
	Secondary string    `json:"secondary"`
	Key       string    `json:"key"`
	V1        LDKLayout `json:"v1"`
	V0        LDKLayout `json:"v0"`
}

// LDKLayout is a storage key, the listing prefix of its namespaces and the associated
// data of its value.
type LDKLayout struct {
	StoreKey string `json:"store_key"`
	Prefix   string `json:"prefix"`
	AAD      Hex    `json:"aad_hex"`
}

// LDKSchemaVersion is LDK Node's schema record.
type LDKSchemaVersion struct {
	StoreKey          string `json:"store_key"`
	V1Value           Hex    `json:"v1_value_hex"`
	V0Value           Hex    `json:"v0_value_hex"`
	V0DetectionPrefix string `json:"v0_detection_prefix"`
	SealedV1          Sealed `json:"sealed_v1"`
}

// NegativeStorable is a stored value and the verification error reading it must give.
type NegativeStorable struct {
	Name              string  `json:"name"`
	DataEncryptionKey Hex     `json:"data_encryption_key"`
	AAD               Hex     `json:"aad_hex"`
	Storable          Hex     `json:"storable_hex"`
	ServerVersion     int64   `json:"server_version"`
	Error             *string `json:"error"`
}

// NegativeKey is an obfuscated key and the error deobfuscating it must give.
type NegativeKey struct {
	Name       string  `json:"name"`
	Obfuscated string  `json:"obfuscated"`
	Error      *string `json:"error"`
}

// VersionCheck is a case of the version rule.
type VersionCheck struct {
	SealedVersion int64   `json:"sealed_version"`
	ServerVersion int64   `json:"server_version"`
	Error         *string `json:"error"`
}

// Fixture is what every writer writes and every reader checks in the cross-language test.
type Fixture struct {
	WalletSeed Hex            `json:"wallet_seed"`
	Stores     []FixtureStore `json:"stores"`
}

// FixtureStore is one store of the fixture.
type FixtureStore struct {
	StoreIDSuffix string `json:"store_id_suffix"`
	Layout        string `json:"layout"` // "vss-client-ng" or "ldk"
	Description   string `json:"description"`
	Ops           []Op   `json:"ops"`
	Expect        Expect `json:"expect"`
}

// Op is one step of a writer; which fields apply depends on Op.
type Op struct {
	Op        string `json:"op"`
	Items     []Item `json:"items"`
	Key       string `json:"key"`
	Version   int64  `json:"version"`
	Schema    string `json:"schema"`
	Primary   string `json:"primary"`
	Secondary string `json:"secondary"`
	Value     Hex    `json:"value_hex"`
	From      string `json:"from"`
	To        string `json:"to"`
}

// Item is a key to put.
type Item struct {
	Key     string `json:"key"`
	Version int64  `json:"version"`
	Value   Hex    `json:"value_hex"`
}

// Expect is what a reader must find.
type Expect struct {
	RawKeys    []RawKey       `json:"raw_keys"`
	List       []KeyVersion   `json:"list"`
	Schema     string         `json:"schema"`
	Namespaces []LDKNamespace `json:"namespaces"`
	Reads      []Read         `json:"reads"`
}

// RawKey is a storage key with its version, as the server lists it.
type RawKey struct {
	StoreKey string `json:"store_key"`
	Version  int64  `json:"version"`
}

// KeyVersion is a key in clear with its version.
type KeyVersion struct {
	Key     string `json:"key"`
	Version int64  `json:"version"`
}

// LDKNamespace is a pair of namespaces and its keys.
type LDKNamespace struct {
	Primary   string   `json:"primary"`
	Secondary string   `json:"secondary"`
	Keys      []string `json:"keys"`
}

// Read is a read a reader makes and its outcome.
type Read struct {
	Primary       string  `json:"primary"`
	Secondary     string  `json:"secondary"`
	Key           string  `json:"key"`
	StoreKey      string  `json:"store_key"`
	Error         *string `json:"error"`
	Value         Hex     `json:"value_hex"`
	Version       int64   `json:"version"`
	SealedVersion int64   `json:"sealed_version"`
	Undetected    string  `json:"undetected"`
}

// Load reads the vectors file at path.
func Load(path string) (*Vectors, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encvectors: %w", err)
	}
	var v Vectors
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("encvectors: %s: %w", path, err)
	}
	if v.Format != 1 {
		return nil, fmt.Errorf("encvectors: %s: format %d, want 1", path, v.Format)
	}
	return &v, nil
}
