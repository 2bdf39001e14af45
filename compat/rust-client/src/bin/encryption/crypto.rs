//! Keys, sealing and LDK Node's key layout, built on the real crates: `vss-client-ng` 0.6.0
//! (`util::storable_builder::StorableBuilder`, `util::key_obfuscator::KeyObfuscator`) and
//! `bitcoin` 0.32 (BIP32 and HMAC-SHA256). The derivation and the layout follow LDK Node's
//! `src/io/vss_store.rs` at commit 77f9564e (`derive_data_encryption_and_obfuscation_keys`,
//! `build_obfuscated_key`, `build_obfuscated_prefix`, `extract_namespaces`,
//! `determine_and_write_schema_version`).

use std::fmt;

use bitcoin::bip32::{ChildNumber, Xpriv};
use bitcoin::hashes::{sha256, Hash, HashEngine, Hmac, HmacEngine};
use bitcoin::secp256k1::rand::{thread_rng, RngCore};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::Network;
use vss_client_ng::prost::Message;
use vss_client_ng::types::Storable;
use vss_client_ng::util::key_obfuscator::KeyObfuscator;
use vss_client_ng::util::storable_builder::{EntropySource, StorableBuilder};

/// The hardened BIP32 child LDK Node derives the VSS seed from (`VSS_HARDENED_CHILD_INDEX`).
pub const VSS_HARDENED_CHILD_INDEX: u32 = 877;
/// The key under empty namespaces where LDK Node keeps its schema version.
pub const SCHEMA_VERSION_KEY: &str = "vss_schema_version";
/// The prefix LDK Node lists to recognise a store written before schema versions (V0).
pub const V0_BDK_WALLET_PREFIX: &str = "bdk_wallet#";
/// The cipher name `StorableBuilder` writes into `EncryptionMetadata.cipher_format`.
pub const CIPHER_FORMAT: &str = "ChaCha20Poly1305";

/// LDK Node's `VssSchemaVersion` as its `impl_writeable_tlv_based_enum!` encodes it: the variant
/// id as one byte, then the BigSize length (0) of the empty TLV stream of a unit variant.
pub const SCHEMA_V0_BYTES: [u8; 2] = [0x00, 0x00];
pub const SCHEMA_V1_BYTES: [u8; 2] = [0x01, 0x00];

/// Keys: what `keysFromWalletSeed` / `keysFromVssSeed` return.
#[derive(Clone)]
pub struct Keys {
    pub vss_seed: [u8; 32],
    pub data_encryption_key: [u8; 32],
    pub obfuscation_master_key: [u8; 32],
}

/// `hkdf(ikm, salt) = HMAC-SHA256(key = salt, message = ikm)`, LDK Node's (and the crate's) helper.
pub fn hkdf(initial_key_material: &[u8], salt: &[u8]) -> [u8; 32] {
    let mut engine = HmacEngine::<sha256::Hash>::new(salt);
    engine.input(initial_key_material);
    Hmac::from_engine(engine).to_byte_array()
}

/// The VSS seed: the private key of `m/877'` under the BIP32 master of the wallet seed. The
/// network only changes the extended key's version bytes, never the private key.
pub fn vss_seed_from_wallet_seed(wallet_seed: &[u8]) -> [u8; 32] {
    let master = Xpriv::new_master(Network::Bitcoin, wallet_seed).expect("a valid BIP32 seed");
    let child = master
        .derive_priv(
            &Secp256k1::new(),
            &[ChildNumber::Hardened {
                index: VSS_HARDENED_CHILD_INDEX,
            }],
        )
        .expect("hardened derivation");
    child.private_key.secret_bytes()
}

/// The pseudo-random key both derived keys come from.
pub fn prk(vss_seed: &[u8; 32]) -> [u8; 32] {
    hkdf(vss_seed, b"pseudo_random_key")
}

pub fn keys_from_vss_seed(vss_seed: [u8; 32]) -> Keys {
    let prk = prk(&vss_seed);
    let data_encryption_key = hkdf(&prk, b"data_encryption_key");
    let obfuscation_master_key = hkdf(
        &prk,
        &[&data_encryption_key[..], b"obfuscation_key"].concat(),
    );
    Keys {
        vss_seed,
        data_encryption_key,
        obfuscation_master_key,
    }
}

pub fn keys_from_wallet_seed(wallet_seed: &[u8]) -> Keys {
    keys_from_vss_seed(vss_seed_from_wallet_seed(wallet_seed))
}

/// An `EntropySource` that always gives the same nonce: for known answers only.
pub struct FixedNonce(pub [u8; 12]);

impl EntropySource for FixedNonce {
    fn fill_bytes(&self, buffer: &mut [u8]) {
        assert_eq!(buffer.len(), 12, "StorableBuilder asks for a 12-byte nonce");
        buffer.copy_from_slice(&self.0);
    }
}

/// The operating system's CSPRNG, for real writes.
pub struct OsRandom;

impl EntropySource for OsRandom {
    fn fill_bytes(&self, buffer: &mut [u8]) {
        thread_rng().fill_bytes(buffer);
    }
}

/// Seals `value` with `version` and `aad` into an encoded `Storable`, as vss-client-ng apps do.
pub fn seal<E: EntropySource>(
    entropy: E,
    value: &[u8],
    version: i64,
    key: &[u8; 32],
    aad: &[u8],
) -> Vec<u8> {
    StorableBuilder::new(entropy)
        .build(value.to_vec(), version, key, aad)
        .encode_to_vec()
}

/// What went wrong when a stored value or key did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Not a Storable, bad metadata, unknown cipher, undecodable blob, key not deobfuscatable.
    Format,
    /// The tag did not verify: tampered, wrong key, or moved to another key or user.
    Authentication,
    /// The sealed version disagrees with the server's: a rollback.
    Version,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Format => "FORMAT",
            Kind::Authentication => "AUTHENTICATION",
            Kind::Version => "VERSION",
        }
    }
}

#[derive(Debug)]
pub struct VerificationError {
    pub kind: Kind,
    pub key: String,
    pub detail: String,
}

impl fmt::Display for VerificationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at key {:?}: {}",
            self.kind.name(),
            self.key,
            self.detail
        )
    }
}

fn fail(kind: Kind, key: &str, detail: impl Into<String>) -> VerificationError {
    VerificationError {
        kind,
        key: key.to_string(),
        detail: detail.into(),
    }
}

/// Opens an encoded `Storable` with `aad`, through the crate's `StorableBuilder::deconstruct`,
/// and returns the value and the sealed version. Stricter than the crate in one point: a
/// `cipher_format` other than "ChaCha20Poly1305" is a FORMAT error (the crate ignores it).
pub fn unseal(
    stored: &[u8],
    key: &[u8; 32],
    aad: &[u8],
    store_key: &str,
) -> Result<(Vec<u8>, i64), VerificationError> {
    let storable = Storable::decode(stored)
        .map_err(|e| fail(Kind::Format, store_key, format!("not a Storable: {e}")))?;
    let meta = storable
        .encryption_metadata
        .as_ref()
        .ok_or_else(|| fail(Kind::Format, store_key, "no encryption_metadata"))?;
    if meta.cipher_format != CIPHER_FORMAT {
        return Err(fail(
            Kind::Format,
            store_key,
            format!("unknown cipher_format {:?}", meta.cipher_format),
        ));
    }
    if meta.nonce.len() != 12 || meta.tag.len() != 16 {
        return Err(fail(
            Kind::Format,
            store_key,
            format!(
                "nonce of {} bytes and tag of {} bytes (want 12 and 16)",
                meta.nonce.len(),
                meta.tag.len()
            ),
        ));
    }
    StorableBuilder::new(OsRandom)
        .deconstruct(storable, key, aad)
        .map_err(|e| {
            // With the metadata checked above, the crate fails only on the tag or on the blob.
            if e.to_string() == "Invalid Tag" {
                fail(Kind::Authentication, store_key, "the tag does not verify")
            } else {
                fail(
                    Kind::Format,
                    store_key,
                    format!("undecodable PlaintextBlob: {e}"),
                )
            }
        })
}

/// The version rule: a blob sealed with -1 has nothing to compare; any other sealed version must
/// be the one the write was sent with, one below the version the server reports.
pub fn check_version(sealed: i64, server: i64, store_key: &str) -> Result<(), VerificationError> {
    if sealed == -1 || sealed.checked_add(1) == Some(server) {
        Ok(())
    } else {
        Err(fail(
            Kind::Version,
            store_key,
            format!(
                "sealed version {sealed} but the server reports {server} (want {})",
                sealed.saturating_add(1)
            ),
        ))
    }
}

/// Deobfuscates `obfuscated` with the crate's `KeyObfuscator`; failure is a FORMAT error.
pub fn deobfuscate(
    ob: &KeyObfuscator,
    obfuscated: &str,
    store_key: &str,
) -> Result<String, VerificationError> {
    ob.deobfuscate(obfuscated).map_err(|e| {
        fail(
            Kind::Format,
            store_key,
            format!("key not deobfuscatable: {e}"),
        )
    })
}

/// LDK Node's two schema generations (`VssSchemaVersion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    V0,
    V1,
}

impl Schema {
    pub fn name(self) -> &'static str {
        match self {
            Schema::V0 => "V0",
            Schema::V1 => "V1",
        }
    }
}

/// `build_obfuscated_key`: V1 `obfuscate(primary#secondary)#obfuscate(key)`; V0 `obfuscate(key)`
/// when the primary namespace is empty (LDK requires the secondary to be empty then), else
/// `primary#secondary#obfuscate(key)`.
pub fn ldk_store_key(
    ob: &KeyObfuscator,
    schema: Schema,
    primary: &str,
    secondary: &str,
    key: &str,
) -> String {
    match schema {
        Schema::V1 => format!(
            "{}#{}",
            ldk_prefix(ob, schema, primary, secondary),
            ob.obfuscate(key)
        ),
        Schema::V0 if primary.is_empty() => ob.obfuscate(key),
        Schema::V0 => format!("{primary}#{secondary}#{}", ob.obfuscate(key)),
    }
}

/// `build_obfuscated_prefix`: the listing prefix of a namespace pair.
pub fn ldk_prefix(ob: &KeyObfuscator, schema: Schema, primary: &str, secondary: &str) -> String {
    match schema {
        Schema::V1 => ob.obfuscate(&format!("{primary}#{secondary}")),
        Schema::V0 => format!("{primary}#{secondary}"),
    }
}

/// The associated data LDK Node seals with: the whole store key in V1, nothing in V0.
pub fn ldk_aad(schema: Schema, store_key: &str) -> &[u8] {
    match schema {
        Schema::V1 => store_key.as_bytes(),
        Schema::V0 => &[],
    }
}

/// Splits a store key back into (primary, secondary, key) in clear, like LDK Node's
/// `extract_namespaces` + `extract_key` (and `list_all_keys`' V0 fallback for bare keys).
pub fn ldk_parse(
    ob: &KeyObfuscator,
    schema: Schema,
    store_key: &str,
) -> Result<(String, String, String), VerificationError> {
    match schema {
        Schema::V1 => {
            let (ns, key) = store_key
                .split_once('#')
                .ok_or_else(|| fail(Kind::Format, store_key, "no '#' in a V1 store key"))?;
            let ns = deobfuscate(ob, ns, store_key)?;
            let (primary, secondary) = ns
                .split_once('#')
                .ok_or_else(|| fail(Kind::Format, store_key, "no '#' in a V1 namespace"))?;
            Ok((
                primary.to_string(),
                secondary.to_string(),
                deobfuscate(ob, key, store_key)?,
            ))
        }
        Schema::V0 => {
            let mut parts = store_key.splitn(3, '#');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(key), None, None) => Ok((
                    String::new(),
                    String::new(),
                    deobfuscate(ob, key, store_key)?,
                )),
                (Some(primary), Some(secondary), Some(key)) => Ok((
                    primary.to_string(),
                    secondary.to_string(),
                    deobfuscate(ob, key, store_key)?,
                )),
                _ => Err(fail(Kind::Format, store_key, "a V0 store key with one '#'")),
            }
        }
    }
}
