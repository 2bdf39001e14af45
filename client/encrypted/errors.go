package encrypted

import (
	"errors"
	"fmt"
)

// Kind says why a stored value or key failed verification.
type Kind int

// The kinds of VerificationError.
const (
	// KindFormat: the stored bytes are not what a writer produces: not a Storable,
	// missing or malformed encryption metadata (nonce not 12 bytes, tag not 16), a cipher
	// other than ChaCha20Poly1305, a PlaintextBlob that does not decode after a valid tag,
	// or a storage key that does not deobfuscate (or does not follow LDK Node's layout).
	KindFormat Kind = iota + 1
	// KindAuthentication: the tag does not verify: the value was tampered with, sealed
	// with another key (another wallet), or moved from another storage key.
	KindAuthentication
	// KindVersion: the version sealed in the value disagrees with the version the
	// server reports for it: an older value served under a newer version (a rollback).
	KindVersion
)

// String returns the kind's name as the other clients spell it: FORMAT,
// AUTHENTICATION or VERSION.
func (k Kind) String() string {
	switch k {
	case KindFormat:
		return "FORMAT"
	case KindAuthentication:
		return "AUTHENTICATION"
	case KindVersion:
		return "VERSION"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// VerificationError is returned, instead of any data, when a value or key read from the
// server fails verification. Match it with errors.As.
type VerificationError struct {
	// Kind says what failed.
	Kind Kind
	// Key is the storage key involved, as stored on the server (obfuscated); empty
	// when the caller did not name one (Sealer.Open).
	Key string
	// Reason says what exactly failed, in words; it never contains secrets or values.
	Reason string
	// Sealed and Served are, for KindVersion, the version sealed in the value and the
	// version the server reported.
	Sealed, Served int64
}

// Error describes the failure.
func (e *VerificationError) Error() string {
	msg := "encrypted: verification failed (" + e.Kind.String() + ")"
	if e.Key != "" {
		msg += " for storage key " + e.Key
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// IsVerification reports whether err is (or wraps) a VerificationError, and of which
// kind (zero when it is not one).
func IsVerification(err error) (Kind, bool) {
	var v *VerificationError
	if errors.As(err, &v) {
		return v.Kind, true
	}
	return 0, false
}

func formatError(key, reason string) *VerificationError {
	return &VerificationError{Kind: KindFormat, Key: key, Reason: reason}
}

// withKey returns err with Key set to the storage key involved when it is a
// VerificationError.
func withKey(err error, storageKey string) error {
	var v *VerificationError
	if errors.As(err, &v) {
		c := *v
		c.Key = storageKey
		return &c
	}
	return err
}
