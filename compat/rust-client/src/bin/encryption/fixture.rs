//! The cross-language fixture (`fixture` in encryption-vectors.json): `write` runs every store's
//! ops, `read` checks every store's `expect` (ENCRYPTION-VECTORS.md describes both).

use std::collections::BTreeSet;

use bitcoin::hex::{DisplayHex, FromHex};
use serde_json::Value;
use vss_client_ng::prost::Message;
use vss_client_ng::types::{KeyValue, Storable};

use crate::crypto::*;
use crate::store::{EncryptedStore, Failure, LdkStore};

fn s<'v>(v: &'v Value, field: &str) -> &'v str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("fixture: {field} is not a string in {v}"))
}

fn i(v: &Value, field: &str) -> i64 {
    v[field]
        .as_i64()
        .unwrap_or_else(|| panic!("fixture: {field} is not an integer in {v}"))
}

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(s(v, field)).unwrap_or_else(|e| panic!("fixture: {field}: {e}"))
}

fn arr<'v>(v: &'v Value, field: &str) -> &'v Vec<Value> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("fixture: {field} is not an array in {v}"))
}

fn schema_of(name: &str) -> Schema {
    match name {
        "V0" => Schema::V0,
        "V1" => Schema::V1,
        other => panic!("fixture: unknown schema {other}"),
    }
}

pub fn keys_of(doc: &Value) -> Keys {
    keys_from_wallet_seed(&bytes(&doc["fixture"], "wallet_seed"))
}

pub async fn write(enc: &EncryptedStore, doc: &Value, prefix: &str) -> Result<usize, String> {
    let mut ops = 0;
    for st in arr(&doc["fixture"], "stores") {
        let store = format!("{prefix}{}", s(st, "store_id_suffix"));
        let mut ldk: Option<LdkStore> = None;
        let mut saved: Option<Vec<u8>> = None;
        for op in arr(st, "ops") {
            let what = format!("{store}: {op}");
            let r: Result<(), Failure> = async {
                match s(op, "op") {
                    "put" => {
                        let items: Vec<(String, i64, Vec<u8>)> = arr(op, "items")
                            .iter()
                            .map(|it| {
                                (
                                    s(it, "key").to_string(),
                                    i(it, "version"),
                                    bytes(it, "value_hex"),
                                )
                            })
                            .collect();
                        enc.put(&store, &items).await
                    }
                    "delete" => enc.delete(&store, s(op, "key"), i(op, "version")).await,
                    "ldk_open" => {
                        let want = schema_of(s(op, "schema"));
                        let opened = match want {
                            Schema::V1 => LdkStore::open(enc, &store).await?,
                            Schema::V0 => LdkStore::with_schema(enc, &store, Schema::V0),
                        };
                        if opened.schema != want {
                            return Err(Failure::Other(format!(
                                "opened as {}, want {}",
                                opened.schema.name(),
                                want.name()
                            )));
                        }
                        ldk = Some(opened);
                        Ok(())
                    }
                    "ldk_write" => {
                        let l = ldk.as_ref().expect("ldk_open first");
                        l.write(
                            s(op, "primary"),
                            s(op, "secondary"),
                            s(op, "key"),
                            &bytes(op, "value_hex"),
                        )
                        .await
                    }
                    "ldk_remove" => {
                        let l = ldk.as_ref().expect("ldk_open first");
                        l.remove(s(op, "primary"), s(op, "secondary"), s(op, "key"))
                            .await
                    }
                    "raw_copy" => {
                        let kv = enc.raw_get(&store, s(op, "from")).await?;
                        enc.raw_put(
                            &store,
                            vec![KeyValue {
                                key: s(op, "to").to_string(),
                                version: i(op, "version"),
                                value: kv.value,
                            }],
                        )
                        .await
                    }
                    "raw_flip" => {
                        let kv = enc.raw_get(&store, s(op, "key")).await?;
                        let mut storable = Storable::decode(&kv.value[..])
                            .map_err(|e| Failure::Other(format!("decode: {e}")))?;
                        storable.data[0] ^= 0x01;
                        enc.raw_put(
                            &store,
                            vec![KeyValue {
                                key: kv.key,
                                version: i(op, "version"),
                                value: storable.encode_to_vec(),
                            }],
                        )
                        .await
                    }
                    "raw_save" => {
                        saved = Some(enc.raw_get(&store, s(op, "key")).await?.value);
                        Ok(())
                    }
                    "raw_restore" => {
                        let value = saved.take().expect("raw_save first");
                        enc.raw_put(
                            &store,
                            vec![KeyValue {
                                key: s(op, "key").to_string(),
                                version: i(op, "version"),
                                value,
                            }],
                        )
                        .await
                    }
                    other => panic!("fixture: unknown op {other}"),
                }
            }
            .await;
            r.map_err(|e| format!("{what}: {e}"))?;
            ops += 1;
        }
    }
    Ok(ops)
}

/// Counts checks; a failed check is recorded and the reading goes on, so one run shows all.
pub struct Checks {
    pub passed: usize,
    pub failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, name: String, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("ok   {name}");
            }
            Err(e) => {
                println!("FAIL {name}: {e}");
                self.failed.push(format!("{name}: {e}"));
            }
        }
    }
}

fn same<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, want {want:?}"))
    }
}

/// The outcome of a read against the fixture's `reads[]` entry.
fn check_read(r: &Value, got: Result<(Vec<u8>, i64, i64), Failure>) -> Result<(), String> {
    match (r["error"].as_str(), got) {
        (None, Ok((value, version, sealed))) => {
            if value != bytes(r, "value_hex") {
                return Err(format!(
                    "value {} differs from {}",
                    value.to_lower_hex_string(),
                    s(r, "value_hex")
                ));
            }
            same((version, sealed), (i(r, "version"), i(r, "sealed_version")))
        }
        (None, Err(e)) => Err(format!("want the value, got {e}")),
        (Some(kind), Ok((value, version, _))) => Err(format!(
            "want a {kind} VerificationError, got data ({} bytes at version {version})",
            value.len()
        )),
        (Some(kind), Err(Failure::Verify(e))) if e.kind.name() == kind => Ok(()),
        (Some(kind), Err(e)) => Err(format!("want a {kind} VerificationError, got {e}")),
    }
}

pub async fn read(enc: &EncryptedStore, doc: &Value, prefix: &str) -> Checks {
    let mut c = Checks {
        passed: 0,
        failed: vec![],
    };
    for st in arr(&doc["fixture"], "stores") {
        let store = format!("{prefix}{}", s(st, "store_id_suffix"));
        let expect = &st["expect"];

        let want_raw: Vec<(String, i64)> = arr(expect, "raw_keys")
            .iter()
            .map(|k| (s(k, "store_key").to_string(), i(k, "version")))
            .collect();
        let got_raw = enc.raw_list(&store, None).await.map(|mut l| {
            l.sort();
            l
        });
        c.check(
            format!("{store}: store keys and versions as stored"),
            match got_raw {
                Ok(got) => same(got, want_raw),
                Err(e) => Err(e.to_string()),
            },
        );

        match s(st, "layout") {
            "vss-client-ng" => {
                let want: Vec<(String, i64)> = arr(expect, "list")
                    .iter()
                    .map(|k| (s(k, "key").to_string(), i(k, "version")))
                    .collect();
                let got = enc.list(&store).await.map(|mut l| {
                    l.sort();
                    l
                });
                c.check(
                    format!("{store}: list (keys in clear)"),
                    match got {
                        Ok(got) => same(got, want),
                        Err(e) => Err(e.to_string()),
                    },
                );
                for r in arr(expect, "reads") {
                    let got = enc.get(&store, s(r, "key")).await;
                    c.check(
                        format!(
                            "{store}: get {:?} ({})",
                            s(r, "key"),
                            r["error"].as_str().unwrap_or("value")
                        ),
                        check_read(r, got),
                    );
                }
            }
            "ldk" => {
                let want_schema = schema_of(s(expect, "schema"));
                let ldk = match LdkStore::open(enc, &store).await {
                    Ok(l) => l,
                    Err(e) => {
                        c.check(
                            format!("{store}: open (schema detection)"),
                            Err(e.to_string()),
                        );
                        continue;
                    }
                };
                c.check(
                    format!("{store}: open detects schema {}", want_schema.name()),
                    same(ldk.schema, want_schema),
                );
                if ldk.schema != want_schema {
                    continue;
                }
                let want_ns: BTreeSet<(String, String)> = arr(expect, "namespaces")
                    .iter()
                    .map(|n| (s(n, "primary").to_string(), s(n, "secondary").to_string()))
                    .collect();
                c.check(
                    format!("{store}: listNamespaces"),
                    match ldk.list_namespaces().await {
                        Ok(got) => same(got, want_ns),
                        Err(e) => Err(e.to_string()),
                    },
                );
                for n in arr(expect, "namespaces") {
                    let (p, sec) = (s(n, "primary"), s(n, "secondary"));
                    let want: BTreeSet<String> = arr(n, "keys")
                        .iter()
                        .map(|k| k.as_str().expect("key").to_string())
                        .collect();
                    c.check(
                        format!("{store}: listKeys({p:?}, {sec:?})"),
                        match ldk.list_keys(p, sec).await {
                            Ok(got) => same(got, want),
                            Err(e) => Err(e.to_string()),
                        },
                    );
                }
                for r in arr(expect, "reads") {
                    let (p, sec, k) = (s(r, "primary"), s(r, "secondary"), s(r, "key"));
                    let got = ldk.read(p, sec, k).await;
                    let outcome = match (r["error"].as_str(), r.get("undetected")) {
                        (Some(kind), _) => kind.to_string(),
                        (None, Some(_)) => "value, undetected copy".to_string(),
                        (None, None) => "value".to_string(),
                    };
                    c.check(
                        format!("{store}: read({p:?}, {sec:?}, {k:?}) ({outcome})"),
                        check_read(r, got),
                    );
                }
            }
            other => panic!("fixture: unknown layout {other}"),
        }
    }
    c
}
