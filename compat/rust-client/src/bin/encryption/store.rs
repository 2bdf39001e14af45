//! The encrypting layer over the real `VssClient`, as vss-client-ng apps and LDK Node use the
//! crate: `EncryptedStore` (obfuscated keys, AAD = the store key, the sealed version is the
//! version the write is sent with) and `LdkStore` (LDK Node's `VssStore` layout, both schema
//! generations, writes with version -1).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use vss_client_ng::client::VssClient;
use vss_client_ng::error::VssError;
use vss_client_ng::types::{
    DeleteObjectRequest, GetObjectRequest, KeyValue, ListKeyVersionsRequest, PutObjectRequest,
};
use vss_client_ng::util::key_obfuscator::KeyObfuscator;
use vss_client_ng::util::retry::{
    ExponentialBackoffRetryPolicy, MaxAttemptsRetryPolicy, RetryPolicy,
};

use crate::crypto::*;

/// No retries: a server error must fail the test, not be hidden by a retry.
type Policy = MaxAttemptsRetryPolicy<ExponentialBackoffRetryPolicy<VssError>>;

/// Why an operation failed: a verification error (the typed error of the other clients) or
/// anything else (transport, server, a bug of the test).
#[derive(Debug)]
pub enum Failure {
    Verify(VerificationError),
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Verify(e) => write!(f, "verification failed: {e}"),
            Failure::Other(e) => write!(f, "{e}"),
        }
    }
}

impl From<VerificationError> for Failure {
    fn from(e: VerificationError) -> Self {
        Failure::Verify(e)
    }
}

fn other(what: &str, e: VssError) -> Failure {
    Failure::Other(format!("{what}: {e}"))
}

pub struct EncryptedStore {
    client: VssClient<Policy>,
    keys: Keys,
    pub ob: KeyObfuscator,
}

impl EncryptedStore {
    /// `vss_url` is the VSS HTTP API (`$VSS_BASE_URL/vss`).
    pub fn new(vss_url: &str, keys: Keys) -> Self {
        let policy =
            ExponentialBackoffRetryPolicy::new(Duration::from_millis(10)).with_max_attempts(1);
        EncryptedStore {
            client: VssClient::new(vss_url.to_string(), policy),
            ob: KeyObfuscator::new(keys.obfuscation_master_key),
            keys,
        }
    }

    // Raw access, without encryption.

    pub async fn raw_get(&self, store: &str, store_key: &str) -> Result<KeyValue, Failure> {
        self.raw_get_opt(store, store_key)
            .await?
            .ok_or_else(|| Failure::Other(format!("GetObject {store_key:?}: no such key")))
    }

    /// `None` when the key does not exist.
    pub async fn raw_get_opt(
        &self,
        store: &str,
        store_key: &str,
    ) -> Result<Option<KeyValue>, Failure> {
        let req = GetObjectRequest {
            store_id: store.to_string(),
            key: store_key.to_string(),
        };
        match self.client.get_object(&req).await {
            Ok(resp) => resp
                .value
                .map(Some)
                .ok_or_else(|| Failure::Other(format!("GetObject {store_key:?}: no value"))),
            Err(VssError::NoSuchKeyError(_)) => Ok(None),
            Err(e) => Err(other(&format!("GetObject {store_key:?}"), e)),
        }
    }

    pub async fn raw_put(&self, store: &str, items: Vec<KeyValue>) -> Result<(), Failure> {
        let req = PutObjectRequest {
            store_id: store.to_string(),
            global_version: None,
            transaction_items: items,
            delete_items: vec![],
        };
        self.client
            .put_object(&req)
            .await
            .map(|_| ())
            .map_err(|e| other("PutObjects", e))
    }

    pub async fn raw_delete(
        &self,
        store: &str,
        store_key: &str,
        version: i64,
    ) -> Result<(), Failure> {
        let req = DeleteObjectRequest {
            store_id: store.to_string(),
            key_value: Some(KeyValue {
                key: store_key.to_string(),
                version,
                value: vec![],
            }),
        };
        self.client
            .delete_object(&req)
            .await
            .map(|_| ())
            .map_err(|e| other("DeleteObject", e))
    }

    /// Every (store key, version) under `prefix`, all pages.
    pub async fn raw_list(
        &self,
        store: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<(String, i64)>, Failure> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..1000 {
            let req = ListKeyVersionsRequest {
                store_id: store.to_string(),
                key_prefix: prefix.map(str::to_string),
                page_size: None,
                page_token: token.clone(),
            };
            let page = self
                .client
                .list_key_versions(&req)
                .await
                .map_err(|e| other("ListKeyVersions", e))?;
            out.extend(page.key_versions.into_iter().map(|kv| (kv.key, kv.version)));
            match page.next_page_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
        }
        Err(Failure::Other(
            "ListKeyVersions: the page token does not advance".into(),
        ))
    }

    /// Reads and verifies the value under `store_key`: the tag with `aad`, then the version rule.
    /// Returns the value, the server's version and the sealed version.
    pub async fn open(
        &self,
        store: &str,
        store_key: &str,
        aad: &[u8],
    ) -> Result<(Vec<u8>, i64, i64), Failure> {
        let kv = self.raw_get(store, store_key).await?;
        let (value, sealed) = unseal(&kv.value, &self.keys.data_encryption_key, aad, store_key)?;
        check_version(sealed, kv.version, store_key)?;
        Ok((value, kv.version, sealed))
    }

    pub fn seal(&self, value: &[u8], version: i64, aad: &[u8]) -> Vec<u8> {
        seal(
            OsRandom,
            value,
            version,
            &self.keys.data_encryption_key,
            aad,
        )
    }

    // EncryptedStore: the vss-client-ng layout.

    pub async fn get(&self, store: &str, key: &str) -> Result<(Vec<u8>, i64, i64), Failure> {
        let sk = self.ob.obfuscate(key);
        self.open(store, &sk, sk.as_bytes()).await
    }

    pub async fn put(&self, store: &str, items: &[(String, i64, Vec<u8>)]) -> Result<(), Failure> {
        let items = items
            .iter()
            .map(|(k, version, value)| {
                let sk = self.ob.obfuscate(k);
                let value = self.seal(value, *version, sk.as_bytes());
                KeyValue {
                    key: sk,
                    version: *version,
                    value,
                }
            })
            .collect();
        self.raw_put(store, items).await
    }

    pub async fn delete(&self, store: &str, key: &str, version: i64) -> Result<(), Failure> {
        self.raw_delete(store, &self.ob.obfuscate(key), version)
            .await
    }

    /// Keys in clear with their versions.
    pub async fn list(&self, store: &str) -> Result<Vec<(String, i64)>, Failure> {
        let mut out = Vec::new();
        for (sk, version) in self.raw_list(store, None).await? {
            out.push((deobfuscate(&self.ob, &sk, &sk)?, version));
        }
        Ok(out)
    }
}

/// LDK Node's layout over an `EncryptedStore`.
pub struct LdkStore<'a> {
    enc: &'a EncryptedStore,
    store: String,
    pub schema: Schema,
}

impl<'a> LdkStore<'a> {
    /// Opens with an explicit schema, writing nothing.
    pub fn with_schema(enc: &'a EncryptedStore, store: &str, schema: Schema) -> Self {
        LdkStore {
            enc,
            store: store.to_string(),
            schema,
        }
    }

    /// Opens as LDK Node's `determine_and_write_schema_version` does: the schema key (always in
    /// the V1 layout, AAD = its store key) if present; else V0 when keys under `bdk_wallet#`
    /// exist; else V1, and the schema key is written (version -1).
    pub async fn open(enc: &'a EncryptedStore, store: &str) -> Result<LdkStore<'a>, Failure> {
        let sk = ldk_store_key(&enc.ob, Schema::V1, "", "", SCHEMA_VERSION_KEY);
        let schema = match enc.raw_get_opt(store, &sk).await? {
            Some(kv) => {
                let (value, _) =
                    unseal(&kv.value, &enc.keys.data_encryption_key, sk.as_bytes(), &sk)?;
                if value == SCHEMA_V1_BYTES {
                    Schema::V1
                } else if value == SCHEMA_V0_BYTES {
                    Schema::V0
                } else {
                    return Err(Failure::Other(format!(
                        "unknown schema version {value:02x?}"
                    )));
                }
            }
            None => {
                if !enc
                    .raw_list(store, Some(V0_BDK_WALLET_PREFIX))
                    .await?
                    .is_empty()
                {
                    Schema::V0
                } else {
                    let value = enc.seal(&SCHEMA_V1_BYTES, -1, sk.as_bytes());
                    enc.raw_put(
                        store,
                        vec![KeyValue {
                            key: sk,
                            version: -1,
                            value,
                        }],
                    )
                    .await?;
                    Schema::V1
                }
            }
        };
        Ok(LdkStore {
            enc,
            store: store.to_string(),
            schema,
        })
    }

    pub fn store_key(&self, primary: &str, secondary: &str, key: &str) -> String {
        ldk_store_key(&self.enc.ob, self.schema, primary, secondary, key)
    }

    /// The value, the server version and the sealed version.
    pub async fn read(
        &self,
        primary: &str,
        secondary: &str,
        key: &str,
    ) -> Result<(Vec<u8>, i64, i64), Failure> {
        let sk = self.store_key(primary, secondary, key);
        self.enc
            .open(&self.store, &sk, ldk_aad(self.schema, &sk))
            .await
    }

    pub async fn write(
        &self,
        primary: &str,
        secondary: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), Failure> {
        let sk = self.store_key(primary, secondary, key);
        let value = self.enc.seal(value, -1, ldk_aad(self.schema, &sk));
        self.enc
            .raw_put(
                &self.store,
                vec![KeyValue {
                    key: sk,
                    version: -1,
                    value,
                }],
            )
            .await
    }

    pub async fn remove(&self, primary: &str, secondary: &str, key: &str) -> Result<(), Failure> {
        self.enc
            .raw_delete(&self.store, &self.store_key(primary, secondary, key), -1)
            .await
    }

    /// Every (primary, secondary, key) in clear, without the schema key.
    pub async fn list_all(&self) -> Result<Vec<(String, String, String)>, Failure> {
        let mut out = Vec::new();
        for (sk, _) in self.enc.raw_list(&self.store, None).await? {
            let triple = ldk_parse(&self.enc.ob, self.schema, &sk)?;
            if triple.0.is_empty() && triple.1.is_empty() && triple.2 == SCHEMA_VERSION_KEY {
                continue;
            }
            out.push(triple);
        }
        Ok(out)
    }

    pub async fn list_namespaces(&self) -> Result<BTreeSet<(String, String)>, Failure> {
        Ok(self
            .list_all()
            .await?
            .into_iter()
            .map(|(p, s, _)| (p, s))
            .collect())
    }

    /// The keys of one namespace pair: V1 lists LDK Node's prefix; V0 lists `primary#secondary#`
    /// (LDK Node's own V0 prefix, `primary#secondary`, also matches `primary#secondary2#…`), and
    /// keys under empty namespaces, stored bare, from the full listing.
    pub async fn list_keys(
        &self,
        primary: &str,
        secondary: &str,
    ) -> Result<BTreeSet<String>, Failure> {
        let listed = match self.schema {
            Schema::V1 => {
                let prefix = ldk_prefix(&self.enc.ob, Schema::V1, primary, secondary);
                self.enc
                    .raw_list(&self.store, Some(&format!("{prefix}#")))
                    .await?
            }
            Schema::V0 if primary.is_empty() => self.enc.raw_list(&self.store, None).await?,
            Schema::V0 => {
                self.enc
                    .raw_list(&self.store, Some(&format!("{primary}#{secondary}#")))
                    .await?
            }
        };
        let mut out = BTreeSet::new();
        for (sk, _) in listed {
            let (p, s, k) = ldk_parse(&self.enc.ob, self.schema, &sk)?;
            if p == primary && s == secondary && !(p.is_empty() && k == SCHEMA_VERSION_KEY) {
                out.insert(k);
            }
        }
        Ok(out)
    }
}
