package encrypted

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// BIP32 child indexes LDK Node derives its VSS secrets at (src/io/vss_store.rs,
// VSS_HARDENED_CHILD_INDEX and VSS_SIGS_AUTH_HARDENED_CHILD_INDEX).
const (
	vssChildIndex      = 877 // m/877': the VSS seed
	sigsAuthChildIndex = 139 // m/877'/139': the key of the signature authentication
)

// WalletSeedSize is the size of LDK Node's wallet seed (WALLET_KEYS_SEED_LEN): its
// keys_seed file holds exactly these bytes, and a BIP39 mnemonic gives a seed of this size.
const WalletSeedSize = 64

// Keys are the two secrets of client-side encryption: the key values are sealed with
// and the master key that key names are obfuscated with (KeyObfuscator). Their String
// and GoString methods never print the bytes.
type Keys struct {
	// DataEncryptionKey is the ChaCha20-Poly1305 key of the values (Sealer).
	DataEncryptionKey [32]byte
	// ObfuscationMasterKey is the master key of the KeyObfuscator.
	ObfuscationMasterKey [32]byte
}

// String hides the key bytes, so that logging Keys by accident leaks nothing.
func (Keys) String() string { return "encrypted.Keys{redacted}" }

// GoString hides the key bytes from %#v too.
func (Keys) GoString() string { return "encrypted.Keys{redacted}" }

// KeysFromVSSSeed derives the keys from a 32-byte VSS seed exactly as LDK Node does
// (derive_data_encryption_and_obfuscation_keys in src/io/vss_store.rs, commit 77f9564e):
// with hkdf(ikm, salt) = HMAC-SHA256(key=salt, message=ikm),
// prk = hkdf(vssSeed, "pseudo_random_key"), the data encryption key is
// hkdf(prk, "data_encryption_key") and the obfuscation master key is
// hkdf(prk, dataEncryptionKey || "obfuscation_key").
func KeysFromVSSSeed(vssSeed [32]byte) Keys {
	prk := hkdf(vssSeed[:], []byte("pseudo_random_key"))
	var k Keys
	k.DataEncryptionKey = hkdf(prk[:], []byte("data_encryption_key"))
	k.ObfuscationMasterKey = hkdf(prk[:], append(k.DataEncryptionKey[:], "obfuscation_key"...))
	return k
}

// KeysFromWalletSeed derives the keys from an LDK Node wallet seed (its keys_seed file,
// 64 bytes) as LDK Node does: KeysFromVSSSeed(VSSSeed(walletSeed)).
func KeysFromWalletSeed(walletSeed []byte) (Keys, error) {
	vssSeed, err := VSSSeed(walletSeed)
	if err != nil {
		return Keys{}, err
	}
	return KeysFromVSSSeed(vssSeed), nil
}

// VSSSeed returns LDK Node's VSS seed of a wallet seed: the 32-byte private key of the
// BIP32 child m/877' of the master key made from the seed (VssStoreBuilder in
// src/io/vss_store.rs). The network LDK Node passes to the master key only changes how
// an extended key is printed, not the private key, so none is asked for. The seed must
// be 16 to 64 bytes long (BIP32); LDK Node's is 64.
func VSSSeed(walletSeed []byte) ([32]byte, error) {
	k, err := derive(walletSeed, vssChildIndex)
	if err != nil {
		return [32]byte{}, err
	}
	var seed [32]byte
	copy(seed[:], k.Serialize())
	return seed, nil
}

// SigningKeyFromWalletSeed returns the key LDK Node signs its VSS requests with when it
// uses the signature scheme (VssStoreBuilder::build_with_sigs_auth): the private key of
// m/877'/139'. With vssclient.Signature it makes a client the same user as the wallet.
func SigningKeyFromWalletSeed(walletSeed []byte) (*secp256k1.PrivateKey, error) {
	k, err := derive(walletSeed, vssChildIndex, sigsAuthChildIndex)
	if err != nil {
		return nil, err
	}
	return secp256k1.PrivKeyFromBytes(k.Serialize()), nil
}

// derive returns the private key at the hardened path m/path[0]'/path[1]'/… of the seed.
func derive(walletSeed []byte, path ...uint32) (*secp256k1.PrivateKey, error) {
	if len(walletSeed) < hdkeychain.MinSeedBytes || len(walletSeed) > hdkeychain.MaxSeedBytes {
		return nil, fmt.Errorf("encrypted: a wallet seed has %d to %d bytes, not %d", hdkeychain.MinSeedBytes, hdkeychain.MaxSeedBytes, len(walletSeed))
	}
	k, err := hdkeychain.NewMaster(walletSeed, &chaincfg.MainNetParams)
	if err != nil {
		return nil, fmt.Errorf("encrypted: BIP32 master key: %w", err)
	}
	for _, i := range path {
		if k, err = k.Derive(hdkeychain.HardenedKeyStart + i); err != nil {
			return nil, fmt.Errorf("encrypted: BIP32 child %d': %w", i, err)
		}
	}
	priv, err := k.ECPrivKey()
	if err != nil {
		return nil, fmt.Errorf("encrypted: BIP32 private key: %w", err)
	}
	return secp256k1.PrivKeyFromBytes(priv.Serialize()), nil
}

// hkdf is the one-step "HKDF" of LDK Node and vss-client-ng: HMAC-SHA256 keyed with
// salt over ikm (the extract step of RFC 5869 only).
func hkdf(ikm, salt []byte) [32]byte {
	m := hmac.New(sha256.New, salt)
	m.Write(ikm)
	var out [32]byte
	m.Sum(out[:0])
	return out
}
