//! The known answers and the cross-language fixture, as one JSON document (the layout is
//! described in ENCRYPTION-VECTORS.md). Every byte comes from the real crates; nothing random.

use std::collections::BTreeMap;

use bitcoin::hex::DisplayHex;
use serde_json::{json, Value};
use vss_client_ng::prost::Message;
use vss_client_ng::types::{EncryptionMetadata, PlaintextBlob, Storable};
use vss_client_ng::util::key_obfuscator::KeyObfuscator;
use vss_client_ng::util::storable_builder::StorableBuilder;

use crate::crypto::*;

/// The wallet seed of every vector and of the fixture: bytes 0x00..0x3f.
pub fn wallet_seed() -> Vec<u8> {
    (0u8..64).collect()
}

fn hex(b: &[u8]) -> String {
    b.to_lower_hex_string()
}

fn nonce(first: u8) -> [u8; 12] {
    let mut n = [0u8; 12];
    for (i, b) in n.iter_mut().enumerate() {
        *b = first.wrapping_add(i as u8);
    }
    n
}

fn pattern(len: usize, mul: usize, add: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * mul + add) % 256) as u8).collect()
}

/// What `StorableBuilder::deconstruct` itself says about a stored value (not our stricter rule).
fn crate_outcome(stored: &[u8], key: &[u8; 32], aad: &[u8]) -> String {
    let storable = match Storable::decode(stored) {
        Ok(s) => s,
        Err(e) => return format!("Storable::decode fails: {e}"),
    };
    match StorableBuilder::new(OsRandom).deconstruct(storable, key, aad) {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("deconstruct fails: {e}"),
    }
}

fn sealed_vector(
    name: &str,
    key: &[u8; 32],
    value: &[u8],
    version: i64,
    aad: &[u8],
    nonce: [u8; 12],
) -> Value {
    let stored = seal(FixedNonce(nonce), value, version, key, aad);
    let storable = Storable::decode(&stored[..]).expect("own output decodes");
    let meta = storable.encryption_metadata.clone().expect("metadata");
    let (got, got_version) = unseal(&stored, key, aad, name).expect("own output opens");
    assert_eq!((got.as_slice(), got_version), (value, version));
    json!({
        "name": name,
        "data_encryption_key": hex(key),
        "value_hex": hex(value),
        "version": version,
        "aad_hex": hex(aad),
        "nonce_hex": hex(&nonce),
        "plaintext_blob_hex": hex(&PlaintextBlob { value: value.to_vec(), version }.encode_to_vec()),
        "ciphertext_hex": hex(&storable.data),
        "tag_hex": hex(&meta.tag),
        "cipher_format": meta.cipher_format,
        "storable_hex": hex(&stored),
    })
}

pub fn build() -> Value {
    let seed = wallet_seed();
    let keys = keys_from_wallet_seed(&seed);
    let dek = keys.data_encryption_key;
    let ob = KeyObfuscator::new(keys.obfuscation_master_key);

    // Obfuscated keys: the fixture's key plus the crate's own known answer.
    let long_key: String = (0..300)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let plain_keys: Vec<&str> = vec![
        "",
        "#",
        "a",
        "a_semi_secret_key",
        SCHEMA_VERSION_KEY,
        "#vss_schema_version",
        "bdk_wallet#",
        "monitors#",
        "ünïcødé ✓ 鍵",
        "key with spaces, commas; and \"quotes\"",
        &long_key,
    ];
    let mut obfuscated_keys: Vec<Value> = plain_keys
        .iter()
        .map(|k| {
            let o = ob.obfuscate(k);
            assert_eq!(ob.deobfuscate(&o).expect("round trip"), *k);
            json!({
                "obfuscation_master_key": hex(&keys.obfuscation_master_key),
                "key": k,
                "key_utf8_hex": hex(k.as_bytes()),
                "obfuscated": o,
            })
        })
        .collect();
    let crate_answer = KeyObfuscator::new([42u8; 32]).obfuscate("a_semi_secret_key");
    assert_eq!(
        crate_answer,
        "cMoet5WTvl0nYds+VW7JPCtXUq24DtMG2dR9apAi/T5jy8eNIEyDrUAJBS4geeUuX+XGXPqlizIByOip2g"
    );
    obfuscated_keys.push(json!({
        "obfuscation_master_key": hex(&[42u8; 32]),
        "key": "a_semi_secret_key",
        "key_utf8_hex": hex(b"a_semi_secret_key"),
        "obfuscated": crate_answer,
    }));

    // Sealed values with fixed nonces.
    let v1_manager = ldk_store_key(&ob, Schema::V1, "", "", "manager");
    let mut sealed = vec![
        sealed_vector(
            "empty value, version 0, empty aad",
            &dek,
            b"",
            0,
            b"",
            nonce(0),
        ),
        sealed_vector(
            "ldk v1 write: version -1, aad = store key",
            &dek,
            b"channel manager bytes",
            -1,
            v1_manager.as_bytes(),
            nonce(1),
        ),
        sealed_vector(
            "conditional create: version 0, aad = obfuscated key",
            &dek,
            b"alpha, first write",
            0,
            ob.obfuscate("alpha").as_bytes(),
            nonce(2),
        ),
        sealed_vector(
            "conditional update: version 1",
            &dek,
            b"alpha, second write",
            1,
            ob.obfuscate("alpha").as_bytes(),
            nonce(3),
        ),
        sealed_vector(
            "version 42, binary value",
            &dek,
            &pattern(256, 1, 0),
            42,
            b"A",
            nonce(4),
        ),
        sealed_vector(
            "version i64::MAX, 4096-byte value",
            &dek,
            &pattern(4096, 31, 7),
            i64::MAX,
            b"big",
            nonce(5),
        ),
        sealed_vector(
            "version -2 (any negative seals as a 10-byte varint)",
            &dek,
            b"negative",
            -2,
            b"",
            nonce(6),
        ),
    ];
    // The crate's decrypt_v031_storable: key 0..31, the 8-byte nonce of 0.3.1 padded to 12.
    let key_0_31: [u8; 32] = std::array::from_fn(|i| i as u8);
    let v031 = sealed_vector(
        "vss-client-ng 0.3.1 storable (crate test decrypt_v031_storable)",
        &key_0_31,
        b"backward_compat_test_data",
        42,
        b"",
        [0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7],
    );
    assert_eq!(
        v031["storable_hex"],
        "0a1d3219e9fb45d742f56c401b7413e7ae07fd81e1433af2863ce88f01f86c12320a104368614368613230506f6c7931333035120c0000000000010203040506071a1087163502261e30ec7cf14b7970a24116"
    );
    sealed.push(v031);

    // LDK Node's store keys for both generations.
    let triples: [(&str, &str, &str); 7] = [
        ("", "", SCHEMA_VERSION_KEY),
        ("", "", "manager"),
        ("bdk_wallet", "", "descriptor"),
        (
            "monitors",
            "",
            "4c3de6f1d9a0b2c8e7f6a5d4c3b2a1908f7e6d5c4b3a29181716151413121110_1",
        ),
        ("payments", "", "0123abcd"),
        ("ns-1", "sub_2", "key-3"),
        ("archived_monitors", "", "a-b_c"),
    ];
    let ldk_store_keys: Vec<Value> = triples
        .iter()
        .map(|(p, s, k)| {
            let layout = |schema: Schema| {
                let store_key = ldk_store_key(&ob, schema, p, s, k);
                let parsed = ldk_parse(&ob, schema, &store_key).expect("own key parses");
                assert_eq!(parsed, (p.to_string(), s.to_string(), k.to_string()));
                json!({
                    "store_key": store_key,
                    "prefix": ldk_prefix(&ob, schema, p, s),
                    "aad_hex": hex(ldk_aad(schema, &store_key)),
                })
            };
            json!({"primary": p, "secondary": s, "key": k, "v1": layout(Schema::V1), "v0": layout(Schema::V0)})
        })
        .collect();

    let schema_key = ldk_store_key(&ob, Schema::V1, "", "", SCHEMA_VERSION_KEY);
    let schema_sealed = sealed_vector(
        "schema version V1 as LDK Node writes it",
        &dek,
        &SCHEMA_V1_BYTES,
        -1,
        schema_key.as_bytes(),
        nonce(7),
    );
    let ldk_schema_version = json!({
        "primary": "",
        "secondary": "",
        "key": SCHEMA_VERSION_KEY,
        "store_key": schema_key,
        "v0_value_hex": hex(&SCHEMA_V0_BYTES),
        "v1_value_hex": hex(&SCHEMA_V1_BYTES),
        "v0_detection_prefix": V0_BDK_WALLET_PREFIX,
        "sealed_v1": schema_sealed,
    });

    json!({
        "format": 1,
        "about": "Known answers for client-side encryption compatible with vss-client-ng 0.6.0 and LDK Node, produced by `cargo run --bin encryption -- vectors` in compat/rust-client from the real crates; see ENCRYPTION-VECTORS.md.",
        "sources": {
            "vss_client_ng": "vss-client-ng 0.6.0: src/util/storable_builder.rs (StorableBuilder), src/util/key_obfuscator.rs (KeyObfuscator)",
            "ldk_node": "LDK Node (lightningdevkit/ldk-node) commit 77f9564e: src/io/vss_store.rs (derive_data_encryption_and_obfuscation_keys, build_obfuscated_key, build_obfuscated_prefix, extract_namespaces, determine_and_write_schema_version, VSS_HARDENED_CHILD_INDEX = 877)",
            "schema_version_encoding": "rust-lightning lightning/src/util/ser_macros.rs: impl_writeable_tlv_based_enum! writes the variant id as one byte, then (_encode_varint_length_prefixed_tlv!) the BigSize length of the variant's TLV stream, 0 for a unit variant",
            "bip32": "bitcoin 0.32.102: bip32::Xpriv::new_master + derive_priv(m/877')",
        },
        "keys": {
            "wallet_seed": hex(&seed),
            "bip32_path": "m/877'",
            "vss_seed": hex(&keys.vss_seed),
            "prk": hex(&prk(&keys.vss_seed)),
            "data_encryption_key": hex(&dek),
            "obfuscation_master_key": hex(&keys.obfuscation_master_key),
        },
        "obfuscated_keys": obfuscated_keys,
        "sealed": sealed,
        "ldk_store_keys": ldk_store_keys,
        "ldk_schema_version": ldk_schema_version,
        "negative_storables": negative_storables(&keys, &ob),
        "negative_keys": negative_keys(&ob),
        "version_checks": version_checks(),
        "fixture": fixture(&keys, &ob),
    })
}

fn negative_storables(keys: &Keys, ob: &KeyObfuscator) -> Vec<Value> {
    let dek = keys.data_encryption_key;
    let store_key = ob.obfuscate("alpha");
    let aad = store_key.as_bytes().to_vec();
    let good = seal(
        FixedNonce(nonce(8)),
        b"a value to tamper with",
        0,
        &dek,
        &aad,
    );
    let base = Storable::decode(&good[..]).expect("decodes");
    let with = |f: &dyn Fn(&mut Storable)| {
        let mut s = base.clone();
        f(&mut s);
        s.encode_to_vec()
    };
    let meta = |f: &dyn Fn(&mut EncryptionMetadata)| {
        with(&|s: &mut Storable| f(s.encryption_metadata.as_mut().expect("metadata")))
    };
    // A valid tag over bytes that are not a PlaintextBlob (0xff: field 31 with wire type 7).
    let undecodable = {
        let mut data = vec![0xffu8];
        let n = nonce(9);
        let tag = chacha20_poly1305::ChaCha20Poly1305::new(
            chacha20_poly1305::Key::new(dek),
            chacha20_poly1305::Nonce::new(n),
        )
        .encrypt(&mut data, Some(&aad));
        Storable {
            data,
            encryption_metadata: Some(EncryptionMetadata {
                cipher_format: CIPHER_FORMAT.to_string(),
                nonce: n.to_vec(),
                tag: tag.to_vec(),
            }),
        }
        .encode_to_vec()
    };
    let other_aad = ob.obfuscate("beta").into_bytes();
    let cases: Vec<(&str, &str, Vec<u8>, [u8; 32], Vec<u8>, i64, Kind)> = vec![
        (
            "untouched",
            "the base case: opens, sealed version 0 at server version 1",
            good.clone(),
            dek,
            aad.clone(),
            1,
            Kind::Format,
        ),
        (
            "tampered_tag",
            "last byte of the tag flipped",
            meta(&|m| *m.tag.last_mut().unwrap() ^= 0x01),
            dek,
            aad.clone(),
            1,
            Kind::Authentication,
        ),
        (
            "tampered_ciphertext",
            "first byte of Storable.data flipped",
            with(&|s| s.data[0] ^= 0x01),
            dek,
            aad.clone(),
            1,
            Kind::Authentication,
        ),
        (
            "wrong_aad",
            "read under another key (a value moved to another key)",
            good.clone(),
            dek,
            other_aad,
            1,
            Kind::Authentication,
        ),
        (
            "empty_aad",
            "a key-bound value opened with an empty aad",
            good.clone(),
            dek,
            vec![],
            1,
            Kind::Authentication,
        ),
        (
            "wrong_key",
            "opened with another data encryption key (another user)",
            good.clone(),
            keys.obfuscation_master_key,
            aad.clone(),
            1,
            Kind::Authentication,
        ),
        (
            "short_nonce",
            "nonce of 11 bytes",
            meta(&|m| {
                m.nonce.pop();
            }),
            dek,
            aad.clone(),
            1,
            Kind::Format,
        ),
        (
            "short_tag",
            "tag of 15 bytes",
            meta(&|m| {
                m.tag.pop();
            }),
            dek,
            aad.clone(),
            1,
            Kind::Format,
        ),
        (
            "no_metadata",
            "Storable without encryption_metadata",
            with(&|s| s.encryption_metadata = None),
            dek,
            aad.clone(),
            1,
            Kind::Format,
        ),
        (
            "unknown_cipher_format",
            "cipher_format \"XChaCha20Poly1305\" (the crate ignores the field; we refuse it)",
            meta(&|m| m.cipher_format = "XChaCha20Poly1305".to_string()),
            dek,
            aad.clone(),
            1,
            Kind::Format,
        ),
        (
            "empty_cipher_format",
            "cipher_format empty",
            meta(&|m| m.cipher_format = String::new()),
            dek,
            aad.clone(),
            1,
            Kind::Format,
        ),
        (
            "not_a_storable",
            "bytes that are not a protobuf message",
            vec![0xff, 0xff, 0xff],
            dek,
            aad.clone(),
            1,
            Kind::Format,
        ),
        (
            "plaintext",
            "a plaintext value as clients without encryption store it",
            b"plain value".to_vec(),
            dek,
            aad.clone(),
            1,
            Kind::Format,
        ),
        (
            "undecodable_blob",
            "valid tag over bytes that are not a PlaintextBlob",
            undecodable,
            dek,
            aad.clone(),
            1,
            Kind::Format,
        ),
        (
            "rollback",
            "sealed version 0 served as version 3 (an older value written back)",
            good.clone(),
            dek,
            aad.clone(),
            3,
            Kind::Version,
        ),
        (
            "same_version",
            "sealed version 0 served as version 0",
            good.clone(),
            dek,
            aad.clone(),
            0,
            Kind::Version,
        ),
    ];
    cases
        .into_iter()
        .map(
            |(name, description, stored, key, aad, server_version, kind)| {
                let ours = unseal(&stored, &key, &aad, &store_key)
                    .and_then(|(_, sealed)| check_version(sealed, server_version, &store_key));
                let error = match ours {
                    Ok(()) => {
                        assert_eq!(name, "untouched");
                        Value::Null
                    }
                    Err(e) => {
                        assert_eq!(e.kind, kind, "{name}: {e}");
                        Value::from(kind.name())
                    }
                };
                json!({
                    "name": name,
                    "description": description,
                    "data_encryption_key": hex(&key),
                    "aad_hex": hex(&aad),
                    "storable_hex": hex(&stored),
                    "server_version": server_version,
                    "error": error,
                    "crate": crate_outcome(&stored, &key, &aad),
                })
            },
        )
        .collect()
}

fn negative_keys(ob: &KeyObfuscator) -> Vec<Value> {
    let good = ob.obfuscate("monitors");
    let flip = |i: usize| -> String {
        let mut chars: Vec<char> = good.chars().collect();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    };
    let cases = vec![
        ("flipped_ciphertext", "first base64 character changed (the encrypted key)", flip(0)),
        ("flipped_tag", "a character inside the key's tag changed", flip(good.len() - 40)),
        ("flipped_wrapped_nonce", "a character inside the wrapped nonce changed", flip(good.len() - 25)),
        ("flipped_last", "the last base64 character changed", flip(good.len() - 1)),
        ("trailing_bits", "the last character with non-zero unused bits: the same bytes, but not canonical base64 (the crate refuses it)", trailing_bits(&good)),
        ("not_base64", "characters outside the alphabet", "not base64!".to_string()),
        ("padded", "base64 with '=' padding (the crate decodes without padding only)", format!("{good}=")),
        ("too_short", "43 bytes, fewer than tag + nonce + tag = 44", "A".repeat(57) + "Q"),
        ("empty", "the empty string", String::new()),
    ];
    let mut out: Vec<Value> = vec![json!({
        "name": "untouched",
        "description": "the base case: deobfuscates to \"monitors\"",
        "obfuscated": good,
        "error": Value::Null,
    })];
    for (name, description, obfuscated) in cases {
        let result = deobfuscate(ob, &obfuscated, &obfuscated);
        assert!(
            matches!(&result, Err(e) if e.kind == Kind::Format),
            "{name}"
        );
        out.push(json!({
            "name": name,
            "description": description,
            "obfuscated": obfuscated,
            "error": Kind::Format.name(),
        }));
    }
    out
}

/// `good` with its last character replaced by one that decodes to the same bytes but sets the
/// unused low bits (the key's length is not a multiple of 3 bytes).
fn trailing_bits(good: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let unused_bits = match good.len() % 4 {
        2 => 4,
        3 => 2,
        _ => panic!("the key's length is a multiple of 3 bytes"),
    };
    let last = good.as_bytes()[good.len() - 1];
    let index = ALPHABET.iter().position(|&c| c == last).expect("base64");
    assert_eq!(index & ((1 << unused_bits) - 1), 0, "canonical");
    format!("{}{}", &good[..good.len() - 1], ALPHABET[index | 1] as char)
}

fn version_checks() -> Vec<Value> {
    let cases: [(i64, i64); 10] = [
        (-1, 1),
        (-1, 7),
        (0, 1),
        (1, 2),
        (41, 42),
        (0, 3),
        (1, 1),
        (2, 2),
        (5, 3),
        (0, 0),
    ];
    cases
        .iter()
        .map(|&(sealed, server)| {
            let error = match check_version(sealed, server, "k") {
                Ok(()) => Value::Null,
                Err(e) => Value::from(e.kind.name()),
            };
            json!({"sealed_version": sealed, "server_version": server, "error": error})
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The cross-language fixture

/// One step a writer takes, in order.
#[derive(Clone)]
enum Op {
    /// EncryptedStore.put: each item sealed with the version it is sent with.
    Put(Vec<(&'static str, i64, Vec<u8>)>),
    /// EncryptedStore.delete.
    Delete(&'static str, i64),
    /// LdkStore.open: V1 detects (empty store: V1, writes the schema key); V0 uses V0 as
    /// LDK Node before schema versions did, writing nothing.
    LdkOpen(Schema),
    LdkWrite(&'static str, &'static str, &'static str, Vec<u8>),
    LdkRemove(&'static str, &'static str, &'static str),
    /// Raw (no encryption): get `from`, put its stored bytes under `to` with `version`.
    RawCopy(String, String, i64),
    /// Raw: get, decode the Storable, flip data[0] (xor 0x01), encode, put with `version`.
    RawFlip(String, i64),
    /// Raw: remember the stored bytes of a key.
    RawSave(String),
    /// Raw: put the remembered bytes back with `version`.
    RawRestore(String, i64),
}

#[derive(Clone)]
struct Entry {
    version: i64,
    value: Vec<u8>,
    sealed: i64,
    /// The AAD the blob was sealed with (None: empty).
    bound_to: Option<String>,
    tampered: bool,
}

struct Sim {
    schema: Option<Schema>,
    raw: BTreeMap<String, Entry>,
    saved: Option<Entry>,
}

fn next_version(current: Option<&Entry>, sent: i64) -> i64 {
    match sent {
        -1 => 1,
        0 => {
            assert!(current.is_none(), "create of an existing key");
            1
        }
        n => {
            assert_eq!(current.map(|e| e.version), Some(n), "conditional write");
            n + 1
        }
    }
}

impl Sim {
    fn apply(&mut self, ob: &KeyObfuscator, op: &Op) {
        match op {
            Op::Put(items) => {
                for (k, version, value) in items {
                    let sk = ob.obfuscate(k);
                    let v = next_version(self.raw.get(&sk), *version);
                    self.raw.insert(
                        sk.clone(),
                        Entry {
                            version: v,
                            value: value.clone(),
                            sealed: *version,
                            bound_to: Some(sk),
                            tampered: false,
                        },
                    );
                }
            }
            Op::Delete(k, _) => {
                self.raw.remove(&ob.obfuscate(k));
            }
            Op::LdkOpen(schema) => {
                self.schema = Some(*schema);
                if *schema == Schema::V1 {
                    let sk = ldk_store_key(ob, Schema::V1, "", "", SCHEMA_VERSION_KEY);
                    self.raw.insert(
                        sk.clone(),
                        Entry {
                            version: 1,
                            value: SCHEMA_V1_BYTES.to_vec(),
                            sealed: -1,
                            bound_to: Some(sk),
                            tampered: false,
                        },
                    );
                }
            }
            Op::LdkWrite(p, s, k, value) => {
                let schema = self.schema.expect("opened");
                let sk = ldk_store_key(ob, schema, p, s, k);
                let bound_to = (schema == Schema::V1).then(|| sk.clone());
                self.raw.insert(
                    sk,
                    Entry {
                        version: 1,
                        value: value.clone(),
                        sealed: -1,
                        bound_to,
                        tampered: false,
                    },
                );
            }
            Op::LdkRemove(p, s, k) => {
                self.raw
                    .remove(&ldk_store_key(ob, self.schema.expect("opened"), p, s, k));
            }
            Op::RawCopy(from, to, version) => {
                let mut e = self.raw[from].clone();
                e.version = next_version(self.raw.get(to), *version);
                self.raw.insert(to.clone(), e);
            }
            Op::RawFlip(key, version) => {
                let mut e = self.raw[key].clone();
                e.version = next_version(Some(&e), *version);
                e.tampered = true;
                self.raw.insert(key.clone(), e);
            }
            Op::RawSave(key) => self.saved = Some(self.raw[key].clone()),
            Op::RawRestore(key, version) => {
                let mut e = self.saved.clone().expect("saved");
                e.version = next_version(self.raw.get(key), *version);
                self.raw.insert(key.clone(), e);
            }
        }
    }

    /// What a reader must get for the value stored under `sk`.
    fn read(&self, sk: &str, schema: Option<Schema>) -> Result<&Entry, Kind> {
        let e = &self.raw[sk];
        let aad_expected = match schema {
            Some(Schema::V0) => None,
            _ => Some(sk.to_string()),
        };
        if e.tampered || e.bound_to != aad_expected {
            return Err(Kind::Authentication);
        }
        if e.sealed != -1 && e.sealed + 1 != e.version {
            return Err(Kind::Version);
        }
        Ok(e)
    }
}

fn op_json(op: &Op) -> Value {
    match op {
        Op::Put(items) => json!({
            "op": "put",
            "items": items.iter().map(|(k, v, value)| json!({"key": k, "version": v, "value_hex": hex(value)})).collect::<Vec<_>>(),
        }),
        Op::Delete(k, v) => json!({"op": "delete", "key": k, "version": v}),
        Op::LdkOpen(schema) => json!({"op": "ldk_open", "schema": schema.name()}),
        Op::LdkWrite(p, s, k, value) => {
            json!({"op": "ldk_write", "primary": p, "secondary": s, "key": k, "value_hex": hex(value)})
        }
        Op::LdkRemove(p, s, k) => {
            json!({"op": "ldk_remove", "primary": p, "secondary": s, "key": k})
        }
        Op::RawCopy(from, to, v) => json!({"op": "raw_copy", "from": from, "to": to, "version": v}),
        Op::RawFlip(k, v) => json!({"op": "raw_flip", "key": k, "version": v}),
        Op::RawSave(k) => json!({"op": "raw_save", "key": k}),
        Op::RawRestore(k, v) => json!({"op": "raw_restore", "key": k, "version": v}),
    }
}

fn store_json(
    ob: &KeyObfuscator,
    suffix: &str,
    layout: &str,
    description: &str,
    ops: Vec<Op>,
    undetected: &[&str],
) -> Value {
    let mut sim = Sim {
        schema: None,
        raw: BTreeMap::new(),
        saved: None,
    };
    for op in &ops {
        sim.apply(ob, op);
    }
    let raw_keys: Vec<Value> = sim
        .raw
        .iter()
        .map(|(k, e)| json!({"store_key": k, "version": e.version}))
        .collect();
    let mut expect = serde_json::Map::new();
    expect.insert("raw_keys".into(), Value::from(raw_keys));
    match sim.schema {
        None => {
            // The vss-client-ng layout: every store key is obfuscate(key).
            let mut list: Vec<(String, &String, &Entry)> = sim
                .raw
                .iter()
                .map(|(sk, e)| (ob.deobfuscate(sk).expect("own key"), sk, e))
                .collect();
            list.sort_by(|a, b| a.0.cmp(&b.0));
            expect.insert(
                "list".into(),
                Value::from(
                    list.iter()
                        .map(|(k, _, e)| json!({"key": k, "version": e.version}))
                        .collect::<Vec<_>>(),
                ),
            );
            let reads = list
                .iter()
                .map(|(k, sk, _)| match sim.read(sk, None) {
                    Ok(e) => json!({"key": k, "store_key": sk, "value_hex": hex(&e.value), "version": e.version, "sealed_version": e.sealed, "error": null}),
                    Err(kind) => json!({"key": k, "store_key": sk, "error": kind.name()}),
                })
                .collect::<Vec<_>>();
            expect.insert("reads".into(), Value::from(reads));
        }
        Some(schema) => {
            expect.insert("schema".into(), Value::from(schema.name()));
            let schema_key = ldk_store_key(ob, Schema::V1, "", "", SCHEMA_VERSION_KEY);
            let mut triples: Vec<(String, String, String, &String)> = sim
                .raw
                .keys()
                .filter(|sk| **sk != schema_key)
                .map(|sk| {
                    let (p, s, k) = ldk_parse(ob, schema, sk).expect("own key");
                    (p, s, k, sk)
                })
                .collect();
            triples.sort();
            let mut namespaces: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
            for (p, s, k, _) in &triples {
                namespaces
                    .entry((p.clone(), s.clone()))
                    .or_default()
                    .push(k.clone());
            }
            expect.insert(
                "namespaces".into(),
                Value::from(
                    namespaces
                        .iter()
                        .map(|((p, s), keys)| json!({"primary": p, "secondary": s, "keys": keys}))
                        .collect::<Vec<_>>(),
                ),
            );
            let reads = triples
                .iter()
                .map(|(p, s, k, sk)| {
                    let mut r = match sim.read(sk, Some(schema)) {
                        Ok(e) => json!({"primary": p, "secondary": s, "key": k, "store_key": sk, "value_hex": hex(&e.value), "version": e.version, "sealed_version": e.sealed, "error": null}),
                        Err(kind) => json!({"primary": p, "secondary": s, "key": k, "store_key": sk, "error": kind.name()}),
                    };
                    if undetected.contains(&k.as_str()) {
                        r["undetected"] = Value::from("a value copied from another key: V0 binds no key into the aad, so this read succeeds");
                    }
                    r
                })
                .collect::<Vec<_>>();
            expect.insert("reads".into(), Value::from(reads));
        }
    }
    json!({
        "store_id_suffix": suffix,
        "layout": layout,
        "description": description,
        "ops": ops.iter().map(op_json).collect::<Vec<_>>(),
        "expect": Value::Object(expect),
    })
}

fn fixture(keys: &Keys, ob: &KeyObfuscator) -> Value {
    let text = |s: &str| s.as_bytes().to_vec();
    let o = |k: &str| ob.obfuscate(k);
    let v1 = |p, s, k| ldk_store_key(ob, Schema::V1, p, s, k);
    let v0 = |p, s, k| ldk_store_key(ob, Schema::V0, p, s, k);

    let plain = vec![
        Op::Put(vec![("alpha", 0, text("alpha, first write"))]),
        Op::Put(vec![("alpha", 1, text("alpha, second write"))]),
        Op::Put(vec![("beta", 0, pattern(256, 1, 0)), ("gamma", 0, vec![])]),
        Op::Put(vec![("delta", -1, text("delta, unconditional"))]),
        Op::Put(vec![("ünïcødé ✓ 鍵", 0, pattern(4096, 31, 7))]),
        Op::Put(vec![("to-delete", 0, text("short-lived"))]),
        Op::Delete("to-delete", 1),
    ];
    let tamper = vec![
        Op::Put(vec![("source", 0, text("written under source"))]),
        Op::RawCopy(o("source"), o("moved"), 0),
        Op::Put(vec![("flipped", 0, text("flipped after writing"))]),
        Op::RawFlip(o("flipped"), -1),
        Op::Put(vec![("rolled-back", 0, text("rolled-back, old"))]),
        Op::RawSave(o("rolled-back")),
        Op::Put(vec![("rolled-back", 1, text("rolled-back, new"))]),
        Op::RawRestore(o("rolled-back"), 2),
    ];
    let monitor = "4c3de6f1d9a0b2c8e7f6a5d4c3b2a1908f7e6d5c4b3a29181716151413121110_1";
    let ldk_v1 = vec![
        Op::LdkOpen(Schema::V1),
        Op::LdkWrite("", "", "manager", text("channel manager bytes")),
        Op::LdkWrite("", "", "network_graph", pattern(2000, 13, 5)),
        Op::LdkWrite(
            "bdk_wallet",
            "",
            "descriptor",
            text("wpkh([73c5da0a/84'/0'/0']xpub/0/*)"),
        ),
        Op::LdkWrite("monitors", "", monitor, pattern(300, 7, 1)),
        Op::LdkWrite("payments", "", "0123abcd", text("a payment")),
        Op::LdkWrite("ns-1", "sub_2", "key-3", vec![]),
        Op::LdkWrite("payments", "", "removed", text("written, then removed")),
        Op::LdkRemove("payments", "", "removed"),
        Op::RawCopy(
            v1("payments", "", "0123abcd"),
            v1("moved", "", "copied"),
            -1,
        ),
    ];
    let ldk_v0 = vec![
        Op::LdkOpen(Schema::V0),
        Op::LdkWrite("", "", "manager", text("channel manager bytes (V0)")),
        Op::LdkWrite(
            "bdk_wallet",
            "",
            "descriptor",
            text("wpkh([73c5da0a/84'/0'/0']xpub/0/*) (V0)"),
        ),
        Op::LdkWrite("monitors", "", monitor, pattern(300, 11, 3)),
        Op::LdkWrite("ns", "sub", "k", text("ns/sub/k")),
        Op::LdkWrite(
            "ns",
            "sub2",
            "k",
            text("ns/sub2/k: a V0 listing of ns#sub also matches ns#sub2"),
        ),
        Op::LdkWrite("payments", "", "removed", text("written, then removed")),
        Op::LdkRemove("payments", "", "removed"),
        Op::RawCopy(
            v0("bdk_wallet", "", "descriptor"),
            v0("payments", "", "copied"),
            -1,
        ),
    ];

    json!({
        "wallet_seed": hex(&vectors_seed_check(keys)),
        "store_ids": "each store's id is the prefix given to the writer followed by store_id_suffix",
        "stores": [
            store_json(ob, "-plain", "vss-client-ng", "EncryptedStore: obfuscated keys, aad = the obfuscated key, conditional versions (create at 0, update at 1), one unconditional write, a multi-item put, a delete", plain, &[]),
            store_json(ob, "-tamper", "vss-client-ng", "EncryptedStore writes, then raw puts a reader must catch: a value copied to another key, a flipped ciphertext byte, an older value written back (rollback)", tamper, &[]),
            store_json(ob, "-ldk-v1", "ldk", "LdkStore V1 as LDK Node writes it (schema key written on open, version -1), one removed key, and a value copied raw to another key", ldk_v1, &[]),
            store_json(ob, "-ldk-v0", "ldk", "LdkStore V0 (no schema key; detected by the bdk_wallet# keys), one removed key, and a value copied raw to another key, which V0 cannot detect", ldk_v0, &["copied"]),
        ],
    })
}

/// The fixture uses the vectors' wallet seed; checked here so the two never drift apart.
fn vectors_seed_check(keys: &Keys) -> Vec<u8> {
    let seed = wallet_seed();
    assert_eq!(
        keys_from_wallet_seed(&seed).data_encryption_key,
        keys.data_encryption_key
    );
    seed
}
