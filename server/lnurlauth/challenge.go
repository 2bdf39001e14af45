package lnurlauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Layout of a challenge k1: the expiry (8 bytes, big-endian Unix seconds) and a nonce
// (8 random bytes) form the signed part; the MAC follows.
const (
	k1Len       = 32
	k1SignedLen = 16
)

// newChallenge returns a fresh k1 that expires ChallengeTTL after now.
func (i *Issuer) newChallenge(now time.Time) [k1Len]byte {
	var k1 [k1Len]byte
	binary.BigEndian.PutUint64(k1[:8], uint64(now.Add(i.challengeTTL).Unix()))
	_, _ = rand.Read(k1[8:k1SignedLen]) // never fails
	copy(k1[k1SignedLen:], i.challengeMAC(k1[:k1SignedLen]))
	return k1
}

// openChallenge checks that k1 was issued by a server holding the MAC key and has not
// expired at now, and returns its expiry.
func (i *Issuer) openChallenge(k1 [k1Len]byte, now time.Time) (time.Time, error) {
	if !hmac.Equal(k1[k1SignedLen:], i.challengeMAC(k1[:k1SignedLen])) {
		return time.Time{}, forbidden("unknown challenge: k1 was not issued by this server")
	}
	// The MAC vouches for the expiry: it is one this issuer wrote, within int64.
	expiry := time.Unix(int64(binary.BigEndian.Uint64(k1[:8])), 0)
	if !now.Before(expiry) {
		return time.Time{}, forbidden("challenge expired: fetch a new LNURL")
	}
	return expiry, nil
}

// challengeMAC returns the MAC of the signed part of a challenge: the first 16 bytes of
// HMAC-SHA256 under the MAC key.
func (i *Issuer) challengeMAC(signed []byte) []byte {
	m := hmac.New(sha256.New, i.macKey)
	m.Write(signed)
	return m.Sum(nil)[:k1Len-k1SignedLen]
}
