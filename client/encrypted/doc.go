// Package encrypted is client-side encryption for VSS over vssclient.Client, byte for
// byte compatible with the Rust client wallets use and with LDK Node:
//
//   - Keys derives the two secrets from a wallet seed as LDK Node does
//     (KeysFromWalletSeed: BIP32 m/877', then HMAC-SHA256 steps) or from a VSS seed.
//   - KeyObfuscator hides key names as vss-client-ng's KeyObfuscator does, and Sealer
//     seals values as its StorableBuilder does (vss-client-ng 0.6.0,
//     src/util/key_obfuscator.rs and src/util/storable_builder.rs): ChaCha20-Poly1305
//     with a random nonce from crypto/rand, the version sealed with the value.
//   - Store reads and writes keys the way vss-client-ng applications do; LDKStore reads
//     and writes them the way LDK Node's VssStore does (src/io/vss_store.rs, LDK Node
//     commit 77f9564e), in both of its schema generations.
//
// The ciphers are golang.org/x/crypto/chacha20poly1305 and the standard library's
// HMAC-SHA256; BIP32 is github.com/btcsuite/btcd/btcutil/hdkeychain.
//
// Whatever fails verification is a *VerificationError (errors.As), never data.
//
// # What the server still sees
//
// The store ids; how many keys a store has and when each is written; each value's size
// (the sealed form adds about 60 to 70 bytes) and version; each key name's length (the
// obfuscated name is base64 of the name plus 44 bytes), and that two writes hit the same
// name, since a name always obfuscates the same way. In LDK Node's V0 layout, the
// namespaces in clear too.
//
// # What a reader can verify, by writer
//
// Store (vss-client-ng applications): the associated data is the obfuscated name, and the
// version sealed is the one the write was sent with. A reader detects a value altered in
// any byte or sealed with other keys (another wallet or user: KindAuthentication), a
// value moved from another key (KindAuthentication), and, for a value written with a
// conditional version N, a server that reports any version but N+1 with it, that is,
// an older value served under a newer version (KindVersion). It cannot detect a value
// moved between two store ids, or two users, of the same keys under the same name (neither
// is sealed), a consistent rollback (an older value served with the older version it had),
// a rollback of a value written with version -1 (nothing to compare), a key deleted or
// left out of a listing, nor a wrong global version.
//
// LDK Node, schema V1 (LDKStore; stores LDK Node created since it records its schema):
// the associated data is the whole storage key, obfuscate(primary#secondary) + "#" +
// obfuscate(key), so altered values, values of other keys or namespaces and values of
// other wallets are detected. LDK Node writes with version -1, so no rollback is
// detectable at all: a server may serve any older value of the same key.
//
// LDK Node, schema V0 (stores LDK Node wrote before it recorded a schema): the associated
// data is empty, so only altered values and values sealed with other keys are
// detected. A value can be moved to any other key of the same wallet, in any namespace
// or store id, without a reader noticing, and no rollback is detectable either.
package encrypted
