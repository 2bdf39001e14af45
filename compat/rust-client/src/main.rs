//! Compatibility check: the real `vss-client-ng` crate (the client LDK Node uses) against this
//! server, through the client's public API only, with its three ways of authenticating:
//! `SigsAuthProvider`, `LnurlAuthToJwtProvider` and fixed `Authorization: Bearer` headers.
//!
//! Environment: `VSS_BASE_URL` (e.g. `http://localhost:18080`); the VSS endpoint is
//! `$VSS_BASE_URL/vss`, the LNURL-auth endpoint `$VSS_BASE_URL/auth/lnurl`. With
//! `VSS_FEED_KEY` (a signature key, 64 hex digits) it also makes the writes whose changes
//! run.sh reads from the change feed.
//!
//! Prints one line per check and ends with `N passed, 0 failed`; stops with exit code 1 at
//! the first failure.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::bip32::{ChildNumber, Xpriv};
use bitcoin::secp256k1::rand::{thread_rng, RngCore};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::Network;
use vss_client_ng::client::VssClient;
use vss_client_ng::error::VssError;
use vss_client_ng::headers::sigs_auth::SigsAuthProvider;
use vss_client_ng::headers::{FixedHeaders, LnurlAuthToJwtProvider, VssHeaderProvider};
use vss_client_ng::types::{
    DeleteObjectRequest, GetObjectRequest, KeyValue, ListKeyVersionsRequest,
    ListKeyVersionsResponse, PutObjectRequest,
};
use vss_client_ng::util::retry::{
    ExponentialBackoffRetryPolicy, FilteredRetryPolicy, MaxAttemptsRetryPolicy, RetryPolicy,
};

/// The retry policy shape LDK Node uses, but with a single attempt: a server error must show up
/// here, not be hidden by a successful retry.
type Policy = FilteredRetryPolicy<
    MaxAttemptsRetryPolicy<ExponentialBackoffRetryPolicy<VssError>>,
    fn(&VssError) -> bool,
>;
type Client = VssClient<Policy>;

fn is_client_error(e: &VssError) -> bool {
    matches!(
        e,
        VssError::NoSuchKeyError(..)
            | VssError::InvalidRequestError(..)
            | VssError::ConflictError(..)
            | VssError::AuthError(..)
    )
}

fn policy() -> Policy {
    ExponentialBackoffRetryPolicy::new(Duration::from_millis(10))
        .with_max_attempts(1)
        .skip_retry_on_error(is_client_error as fn(&VssError) -> bool)
}

fn client_with(vss_url: &str, provider: Arc<dyn VssHeaderProvider>) -> Client {
    VssClient::new_with_headers(vss_url.to_string(), policy(), provider)
}

fn fixed_headers(pairs: &[(&str, &str)]) -> Arc<dyn VssHeaderProvider> {
    let headers: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Arc::new(FixedHeaders::new(headers))
}

// ---------------------------------------------------------------------------------------------
// Reporting

struct Report {
    passed: usize,
}

impl Report {
    fn check(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("ok   {name}");
            }
            Err(e) => {
                println!("FAIL {name}: {e}");
                println!("{} passed, 1 failed", self.passed);
                std::process::exit(1);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Thin helpers over the client's real API

fn kv(key: &str, version: i64, value: &[u8]) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        version,
        value: value.to_vec(),
    }
}

async fn put(
    c: &Client,
    store: &str,
    global_version: Option<i64>,
    items: Vec<KeyValue>,
    deletes: Vec<KeyValue>,
) -> Result<(), VssError> {
    let req = PutObjectRequest {
        store_id: store.to_string(),
        global_version,
        transaction_items: items,
        delete_items: deletes,
    };
    c.put_object(&req).await.map(|_| ())
}

async fn get(c: &Client, store: &str, key: &str) -> Result<KeyValue, VssError> {
    let req = GetObjectRequest {
        store_id: store.to_string(),
        key: key.to_string(),
    };
    // The client itself turns a response without a value into an error.
    c.get_object(&req)
        .await
        .map(|r| r.value.unwrap_or_default())
}

async fn delete(c: &Client, store: &str, key: &str, version: i64) -> Result<(), VssError> {
    let req = DeleteObjectRequest {
        store_id: store.to_string(),
        key_value: Some(kv(key, version, b"")),
    };
    c.delete_object(&req).await.map(|_| ())
}

/// Lists every page, following `next_page_token` until it is absent or empty.
async fn list_pages(
    c: &Client,
    store: &str,
    prefix: Option<&str>,
    page_size: Option<i32>,
) -> Result<Vec<ListKeyVersionsResponse>, String> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        if pages.len() >= 100 {
            return Err("more than 100 pages: the page token does not advance".into());
        }
        let req = ListKeyVersionsRequest {
            store_id: store.to_string(),
            key_prefix: prefix.map(str::to_string),
            page_size,
            page_token: token.clone(),
        };
        let page = c
            .list_key_versions(&req)
            .await
            .map_err(|e| format!("list_key_versions: {e}"))?;
        let next = page.next_page_token.clone();
        pages.push(page);
        match next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    Ok(pages)
}

fn keys_of(pages: &[ListKeyVersionsResponse]) -> Vec<(String, i64)> {
    pages
        .iter()
        .flat_map(|p| p.key_versions.iter().map(|kv| (kv.key.clone(), kv.version)))
        .collect()
}

fn ok<T>(r: Result<T, VssError>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: expected success, got {e:?}"))
}

fn want_err<T: std::fmt::Debug>(
    r: Result<T, VssError>,
    variant: &str,
    matches: fn(&VssError) -> bool,
) -> Result<(), String> {
    match r {
        Err(e) if matches(&e) => Ok(()),
        Err(e) => Err(format!("expected VssError::{variant}, got {e:?}")),
        Ok(v) => Err(format!("expected VssError::{variant}, got success {v:?}")),
    }
}

fn is_conflict(e: &VssError) -> bool {
    matches!(e, VssError::ConflictError(_))
}
fn is_no_such_key(e: &VssError) -> bool {
    matches!(e, VssError::NoSuchKeyError(_))
}
fn is_auth(e: &VssError) -> bool {
    matches!(e, VssError::AuthError(_))
}

fn want_kv(got: &KeyValue, key: &str, version: i64, value: &[u8]) -> Result<(), String> {
    if got.key != key {
        return Err(format!("key: want {key:?}, got {:?}", got.key));
    }
    if got.version != version {
        return Err(format!(
            "version of {key:?}: want {version}, got {}",
            got.version
        ));
    }
    if got.value != value {
        return Err(format!(
            "value of {key:?}: want {} bytes {:?}, got {} bytes {:?}",
            value.len(),
            String::from_utf8_lossy(&value[..value.len().min(40)]),
            got.value.len(),
            String::from_utf8_lossy(&got.value[..got.value.len().min(40)]),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The suite every auth setup runs

async fn crud_suite(t: &mut Report, c: &Client, label: &str, store: &str) {
    let n = |s: &str| format!("[{label}] {s}");

    // Create, read back.
    t.check(
        &n("put_object version 0 creates a key"),
        ok(
            put(c, store, None, vec![kv("alpha", 0, b"alpha-1")], vec![]).await,
            "put alpha v0",
        ),
    );
    let r = async {
        want_kv(
            &ok(get(c, store, "alpha").await, "get alpha")?,
            "alpha",
            1,
            b"alpha-1",
        )
    };
    t.check(&n("get_object returns the value at version 1"), r.await);
    t.check(
        &n("put_object version 0 on an existing key -> ConflictError"),
        want_err(
            put(c, store, None, vec![kv("alpha", 0, b"again")], vec![]).await,
            "ConflictError",
            is_conflict,
        ),
    );

    // Conditional update 1 -> 2, stale version refused, unconditional write.
    let r = async {
        ok(
            put(c, store, None, vec![kv("alpha", 1, b"alpha-2")], vec![]).await,
            "put alpha v1",
        )?;
        want_kv(
            &ok(get(c, store, "alpha").await, "get alpha")?,
            "alpha",
            2,
            b"alpha-2",
        )
    };
    t.check(&n("conditional update version 1 -> 2"), r.await);
    t.check(
        &n("conditional update with a stale version -> ConflictError"),
        want_err(
            put(c, store, None, vec![kv("alpha", 1, b"stale")], vec![]).await,
            "ConflictError",
            is_conflict,
        ),
    );
    let r = async {
        ok(
            put(c, store, None, vec![kv("alpha", -1, b"alpha-3")], vec![]).await,
            "put alpha -1",
        )?;
        want_kv(
            &ok(get(c, store, "alpha").await, "get alpha")?,
            "alpha",
            1,
            b"alpha-3",
        )
    };
    t.check(
        &n("unconditional write (version -1) stores the value at version 1"),
        r.await,
    );
    let r = async {
        ok(
            put(c, store, None, vec![kv("fresh", -1, b"f")], vec![]).await,
            "put fresh -1",
        )?;
        want_kv(
            &ok(get(c, store, "fresh").await, "get fresh")?,
            "fresh",
            1,
            b"f",
        )
    };
    t.check(
        &n("unconditional write (version -1) creates a missing key"),
        r.await,
    );

    // Global version.
    let r = async {
        want_kv(
            &ok(get(c, store, "global_version").await, "get global_version")?,
            "global_version",
            0,
            b"",
        )
    };
    t.check(
        &n("get_object(\"global_version\") of a new store is version 0"),
        r.await,
    );
    t.check(
        &n("put_object with global_version Some(0) succeeds"),
        ok(
            put(c, store, Some(0), vec![kv("g1", 0, b"g1")], vec![]).await,
            "put gv 0",
        ),
    );
    t.check(
        &n("put_object with global_version Some(1) succeeds"),
        ok(
            put(c, store, Some(1), vec![kv("g2", 0, b"g2")], vec![]).await,
            "put gv 1",
        ),
    );
    t.check(
        &n("put_object with a mismatched global_version -> ConflictError"),
        want_err(
            put(c, store, Some(1), vec![kv("g3", 0, b"g3")], vec![]).await,
            "ConflictError",
            is_conflict,
        ),
    );
    t.check(
        &n("the refused put wrote nothing (all-or-nothing)"),
        want_err(get(c, store, "g3").await, "NoSuchKeyError", is_no_such_key),
    );
    let r = async {
        want_kv(
            &ok(get(c, store, "global_version").await, "get global_version")?,
            "global_version",
            2,
            b"",
        )?;
        want_kv(&ok(get(c, store, "g2").await, "get g2")?, "g2", 1, b"g2")
    };
    t.check(
        &n("get_object(\"global_version\") returns version 2"),
        r.await,
    );
    let r = async {
        // No global version in the request: neither checked nor bumped.
        ok(
            put(c, store, None, vec![kv("g4", 0, b"g4")], vec![]).await,
            "put without gv",
        )?;
        want_kv(
            &ok(get(c, store, "global_version").await, "get global_version")?,
            "global_version",
            2,
            b"",
        )
    };
    t.check(
        &n("put_object without global_version leaves it unchanged"),
        r.await,
    );

    // Missing key.
    t.check(
        &n("get_object of a missing key -> NoSuchKeyError"),
        want_err(
            get(c, store, "no-such-key").await,
            "NoSuchKeyError",
            is_no_such_key,
        ),
    );

    // Multi-item transaction, all-or-nothing.
    let r = async {
        ok(
            put(
                c,
                store,
                None,
                vec![kv("m1", 0, b"m1"), kv("m2", 0, b"m2"), kv("m3", 0, b"m3")],
                vec![],
            )
            .await,
            "put m1..m3",
        )?;
        want_kv(&ok(get(c, store, "m3").await, "get m3")?, "m3", 1, b"m3")?;
        want_err(
            put(
                c,
                store,
                None,
                vec![kv("m4", 0, b"m4"), kv("m1", 0, b"dup")],
                vec![],
            )
            .await,
            "ConflictError",
            is_conflict,
        )?;
        want_err(get(c, store, "m4").await, "NoSuchKeyError", is_no_such_key)
    };
    t.check(
        &n("multi-item put_object commits all items or none"),
        r.await,
    );

    // delete_object.
    let r = async {
        ok(delete(c, store, "alpha", -1).await, "delete alpha")?;
        want_err(
            get(c, store, "alpha").await,
            "NoSuchKeyError",
            is_no_such_key,
        )
    };
    t.check(&n("delete_object (version -1) removes the key"), r.await);
    let r = async {
        ok(delete(c, store, "alpha", -1).await, "delete alpha again")?;
        ok(
            delete(c, store, "never-existed", 7).await,
            "delete never-existed",
        )
    };
    t.check(
        &n("delete_object of a missing key succeeds (idempotent)"),
        r.await,
    );
    let r = async {
        // Version mismatch on a standalone delete: success, and nothing changes.
        ok(
            delete(c, store, "m1", 5).await,
            "delete m1 with wrong version",
        )?;
        want_kv(&ok(get(c, store, "m1").await, "get m1")?, "m1", 1, b"m1")?;
        ok(delete(c, store, "m1", 1).await, "delete m1 v1")?;
        want_err(get(c, store, "m1").await, "NoSuchKeyError", is_no_such_key)
    };
    t.check(
        &n("delete_object with a version deletes only that version"),
        r.await,
    );

    // delete_items inside put_object.
    let r = async {
        ok(
            put(c, store, None, vec![kv("beta", 0, b"beta")], vec![]).await,
            "put beta",
        )?;
        ok(
            put(
                c,
                store,
                None,
                vec![kv("gamma", 0, b"gamma")],
                vec![kv("beta", 1, b"")],
            )
            .await,
            "put gamma + delete beta",
        )?;
        want_err(
            get(c, store, "beta").await,
            "NoSuchKeyError",
            is_no_such_key,
        )?;
        want_kv(
            &ok(get(c, store, "gamma").await, "get gamma")?,
            "gamma",
            1,
            b"gamma",
        )
    };
    t.check(
        &n("put_object delete_items deletes together with the write"),
        r.await,
    );
    let r = async {
        want_err(
            put(
                c,
                store,
                None,
                vec![kv("delta", 0, b"delta")],
                vec![kv("beta", -1, b"")],
            )
            .await,
            "ConflictError",
            is_conflict,
        )?;
        want_err(
            get(c, store, "delta").await,
            "NoSuchKeyError",
            is_no_such_key,
        )
    };
    t.check(
        &n("put_object delete_items of a missing key -> ConflictError, nothing written"),
        r.await,
    );

    // A 5 MiB value.
    let mut big = vec![0u8; 5 * 1024 * 1024];
    thread_rng().fill_bytes(&mut big);
    let r = async {
        ok(
            put(c, store, None, vec![kv("big", 0, &big)], vec![]).await,
            "put 5 MiB",
        )?;
        let got = ok(get(c, store, "big").await, "get 5 MiB")?;
        if got.version != 1 || got.value.len() != big.len() {
            return Err(format!(
                "got version {} and {} bytes",
                got.version,
                got.value.len()
            ));
        }
        if let Some(i) = got.value.iter().zip(big.iter()).position(|(a, b)| a != b) {
            return Err(format!("values differ from byte {i} on"));
        }
        Ok(())
    };
    t.check(&n("a 5 MiB value round-trips byte for byte"), r.await);
}

async fn list_suite(t: &mut Report, c: &Client, label: &str, store: &str) {
    let n = |s: &str| format!("[{label}] {s}");
    const N: usize = 250;
    let key = |i: usize| format!("list/{i:04}");

    let r = async {
        for i in 0..N {
            ok(
                put(c, store, None, vec![kv(&key(i), 0, b"x")], vec![]).await,
                &format!("put {}", key(i)),
            )?;
        }
        // An update keeps the key's place; bump the global version in the same request.
        ok(
            put(c, store, Some(0), vec![kv(&key(100), 1, b"y")], vec![]).await,
            "update list/0100",
        )
    };
    t.check(&n(&format!("created {N} keys one request each")), r.await);

    // Default page size: the server's cap applies.
    let pages = list_pages(c, store, None, None).await;
    t.check(
        &n("list_key_versions pages through the store"),
        pages.as_ref().map(|_| ()).map_err(|e| e.clone()),
    );
    let pages = pages.unwrap();
    let r = (|| {
        if pages.len() < 2 {
            return Err(format!(
                "expected several pages for {N} keys, got {}",
                pages.len()
            ));
        }
        for (i, p) in pages.iter().enumerate() {
            if p.key_versions.len() > 100 {
                return Err(format!(
                    "page {i} has {} keys, more than the cap of 100",
                    p.key_versions.len()
                ));
            }
        }
        Ok(())
    })();
    t.check(&n(&format!("{} pages of at most 100 keys", pages.len())), r);
    let r = (|| {
        match pages[0].global_version {
            Some(1) => {}
            other => {
                return Err(format!(
                    "first page global_version: want Some(1), got {other:?}"
                ))
            }
        }
        for (i, p) in pages.iter().enumerate().skip(1) {
            if p.global_version.is_some() {
                return Err(format!(
                    "page {i} carries global_version {:?}",
                    p.global_version
                ));
            }
        }
        Ok(())
    })();
    t.check(
        &n("first page carries global_version Some(1), later pages none"),
        r,
    );
    let r = (|| {
        let got = keys_of(&pages);
        let distinct: HashSet<&String> = got.iter().map(|(k, _)| k).collect();
        if got.len() != N || distinct.len() != N {
            return Err(format!(
                "want {N} distinct keys, got {} ({} distinct)",
                got.len(),
                distinct.len()
            ));
        }
        for (pos, (k, v)) in got.iter().enumerate() {
            let i = N - 1 - pos;
            let want_v = if i == 100 { 2 } else { 1 };
            if *k != key(i) || *v != want_v {
                return Err(format!(
                    "position {pos}: want ({}, {want_v}), got ({k}, {v})",
                    key(i)
                ));
            }
        }
        Ok(())
    })();
    t.check(
        &n("all keys listed once, newest first, versions right, update kept its place"),
        r,
    );
    let r = (|| {
        for p in &pages {
            for kv in &p.key_versions {
                if !kv.value.is_empty() {
                    return Err(format!(
                        "{} listed with a {}-byte value",
                        kv.key,
                        kv.value.len()
                    ));
                }
            }
        }
        Ok(())
    })();
    t.check(&n("list_key_versions returns no values"), r);

    // A smaller page size asked for by the client.
    let r = async {
        let pages = list_pages(c, store, None, Some(40)).await?;
        if let Some(p) = pages.iter().find(|p| p.key_versions.len() > 40) {
            return Err(format!(
                "a page has {} keys with page_size 40",
                p.key_versions.len()
            ));
        }
        let got = keys_of(&pages);
        if got.len() != N || got[0].0 != key(N - 1) || got[N - 1].0 != key(0) {
            return Err(format!("with page_size 40: {} keys", got.len()));
        }
        if pages.len() < 7 {
            return Err(format!("with page_size 40: only {} pages", pages.len()));
        }
        Ok(())
    };
    t.check(&n("page_size Some(40) is honoured across pages"), r.await);

    // key_prefix filter (literal: `_` is no wildcard).
    let r = async {
        for k in ["pfx/a", "pfx/b", "pfx_c", "pfxZ"] {
            ok(
                put(c, store, None, vec![kv(k, 0, b"p")], vec![]).await,
                &format!("put {k}"),
            )?;
        }
        let pages = list_pages(c, store, Some("pfx/"), None).await?;
        let got: Vec<String> = keys_of(&pages).into_iter().map(|(k, _)| k).collect();
        if got != ["pfx/b", "pfx/a"] {
            return Err(format!("prefix \"pfx/\": want [pfx/b, pfx/a], got {got:?}"));
        }
        if pages[0].global_version != Some(1) {
            return Err(format!(
                "prefix listing global_version: {:?}",
                pages[0].global_version
            ));
        }
        let pages = list_pages(c, store, Some("pfx_"), None).await?;
        let got: Vec<String> = keys_of(&pages).into_iter().map(|(k, _)| k).collect();
        if got != ["pfx_c"] {
            return Err(format!("prefix \"pfx_\": want [pfx_c], got {got:?}"));
        }
        let pages = list_pages(c, store, Some("list/02"), None).await?;
        let got = keys_of(&pages);
        if got.len() != 50 || got[0].0 != "list/0249" || got[49].0 != "list/0200" {
            return Err(format!("prefix \"list/02\": {} keys", got.len()));
        }
        Ok(())
    };
    t.check(&n("key_prefix filters literally"), r.await);
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    let base = match std::env::var("VSS_BASE_URL") {
        Ok(v) if !v.is_empty() => v.trim_end_matches('/').to_string(),
        _ => {
            eprintln!("VSS_BASE_URL is not set (e.g. http://localhost:18080)");
            std::process::exit(2);
        }
    };
    let vss_url = format!("{base}/vss");
    let lnurl_url = format!("{base}/auth/lnurl");
    println!("vss-client-ng 0.6.0 against {vss_url} (LNURL-auth at {lnurl_url})");
    let mut t = Report { passed: 0 };
    let secp = Secp256k1::new();

    // (1) SigsAuthProvider with a random key.
    let sig_key = SecretKey::new(&mut thread_rng());
    let sigs: Arc<dyn VssHeaderProvider> = Arc::new(SigsAuthProvider::new(sig_key, HashMap::new()));
    let c1 = client_with(&vss_url, sigs.clone());

    // (2) LnurlAuthToJwtProvider with a random hardened parent key (m/138' as LUD-05 suggests).
    let mut seed = [0u8; 32];
    thread_rng().fill_bytes(&mut seed);
    let master = Xpriv::new_master(Network::Bitcoin, &seed).expect("master key");
    let parent = master
        .derive_priv(
            &secp,
            &[ChildNumber::from_hardened_idx(138).expect("index")],
        )
        .expect("m/138'");
    let lnurl = Arc::new(LnurlAuthToJwtProvider::new(
        parent,
        lnurl_url.clone(),
        HashMap::new(),
    ));
    let c2 = client_with(&vss_url, lnurl.clone());

    // (3) Fixed headers with the bearer token the LNURL provider obtained.
    let r = lnurl.get_headers(&[]).await;
    let token = match &r {
        Ok(h) => h.get("Authorization").cloned().unwrap_or_default(),
        Err(_) => String::new(),
    };
    let r = match r {
        Err(e) => Err(format!("LnurlAuthToJwtProvider::get_headers: {e}")),
        Ok(_) if !token.starts_with("Bearer ") || token.split('.').count() != 3 => {
            Err(format!("Authorization is not a bearer JWT: {token:?}"))
        }
        Ok(_) => Ok(()),
    };
    t.check(
        "[lnurl] LnurlAuthToJwtProvider logs in and yields a bearer JWT",
        r,
    );
    let c3 = client_with(&vss_url, fixed_headers(&[("Authorization", &token)]));

    // Setups (1) and (2) use the same store ids; setup (3) is the same user as (2), so it
    // uses its own.
    crud_suite(&mut t, &c1, "sigs", "wallet").await;
    list_suite(&mut t, &c1, "sigs", "wallet-list").await;
    crud_suite(&mut t, &c2, "lnurl", "wallet").await;
    list_suite(&mut t, &c2, "lnurl", "wallet-list").await;
    crud_suite(&mut t, &c3, "fixed-jwt", "wallet-fixed").await;
    list_suite(&mut t, &c3, "fixed-jwt", "wallet-fixed-list").await;

    // Isolation: same store id and key, two users.
    let store = "wallet";
    let key = "isolation/shared-key";
    let r = async {
        ok(
            put(
                &c1,
                store,
                None,
                vec![kv(key, 0, b"value of the sigs user")],
                vec![],
            )
            .await,
            "sigs put",
        )?;
        ok(
            put(
                &c2,
                store,
                None,
                vec![kv(key, 0, b"value of the lnurl user")],
                vec![],
            )
            .await,
            "lnurl put",
        )
    };
    t.check(
        "[isolation] both users create the same store id and key with version 0",
        r.await,
    );
    let r = async {
        want_kv(
            &ok(get(&c1, store, key).await, "sigs get")?,
            key,
            1,
            b"value of the sigs user",
        )?;
        want_kv(
            &ok(get(&c2, store, key).await, "lnurl get")?,
            key,
            1,
            b"value of the lnurl user",
        )
    };
    t.check(
        "[isolation] each user reads back only its own value",
        r.await,
    );
    let r = async {
        ok(
            put(
                &c1,
                store,
                None,
                vec![kv(key, 1, b"sigs user again")],
                vec![],
            )
            .await,
            "sigs update",
        )?;
        want_kv(
            &ok(get(&c2, store, key).await, "lnurl get")?,
            key,
            1,
            b"value of the lnurl user",
        )
    };
    t.check(
        "[isolation] one user's update leaves the other's version and value alone",
        r.await,
    );
    let r = async {
        ok(
            put(
                &c1,
                store,
                None,
                vec![kv("isolation/only-sigs", 0, b"s")],
                vec![],
            )
            .await,
            "sigs put",
        )?;
        for (who, c, want) in [
            (
                "sigs",
                &c1,
                vec![("isolation/only-sigs".to_string(), 1), (key.to_string(), 2)],
            ),
            ("lnurl", &c2, vec![(key.to_string(), 1)]),
        ] {
            let got = keys_of(&list_pages(c, store, Some("isolation/"), None).await?);
            if got != want {
                return Err(format!("{who} lists {got:?}, want {want:?}"));
            }
        }
        want_err(
            get(&c2, store, "isolation/only-sigs").await,
            "NoSuchKeyError",
            is_no_such_key,
        )
    };
    t.check("[isolation] each user lists only its own keys", r.await);
    let r = async {
        ok(
            delete(&c2, store, "isolation/only-sigs", -1).await,
            "lnurl delete of the other's key",
        )?;
        want_kv(
            &ok(get(&c1, store, "isolation/only-sigs").await, "sigs get")?,
            "isolation/only-sigs",
            1,
            b"s",
        )
    };
    t.check(
        "[isolation] deleting another user's key touches nothing",
        r.await,
    );
    let r = async {
        // The fixed-header client carries the LNURL user's token: it is the same user.
        want_kv(
            &ok(get(&c3, store, key).await, "fixed-jwt get")?,
            key,
            1,
            b"value of the lnurl user",
        )
    };
    t.check(
        "[isolation] the fixed bearer token acts as the LNURL user",
        r.await,
    );
    let r = async {
        // A second provider with the same parent key logs in again (fresh k1) as the same user.
        let again = Arc::new(LnurlAuthToJwtProvider::new(
            parent,
            lnurl_url.clone(),
            HashMap::new(),
        ));
        let c = client_with(&vss_url, again);
        want_kv(
            &ok(get(&c, store, key).await, "second lnurl get")?,
            key,
            1,
            b"value of the lnurl user",
        )
    };
    t.check(
        "[isolation] a new LNURL login with the same key is the same user",
        r.await,
    );
    let r = async {
        let mut seed = [0u8; 32];
        thread_rng().fill_bytes(&mut seed);
        let other = Xpriv::new_master(Network::Bitcoin, &seed).expect("master key");
        let c = client_with(
            &vss_url,
            Arc::new(LnurlAuthToJwtProvider::new(
                other,
                lnurl_url.clone(),
                HashMap::new(),
            )),
        );
        want_err(get(&c, store, key).await, "NoSuchKeyError", is_no_such_key)
    };
    t.check(
        "[isolation] an LNURL login with another key is another user",
        r.await,
    );

    // Wrong or expired credentials -> AuthError, on every endpoint.
    let bad = |h: &[(&str, &str)]| client_with(&vss_url, fixed_headers(h));
    let r = async {
        let c = bad(&[("Authorization", "garbage")]);
        want_err(get(&c, store, key).await, "AuthError", is_auth)?;
        want_err(
            put(&c, store, None, vec![kv("x", 0, b"x")], vec![]).await,
            "AuthError",
            is_auth,
        )?;
        want_err(delete(&c, store, key, -1).await, "AuthError", is_auth)?;
        let req = ListKeyVersionsRequest {
            store_id: store.into(),
            ..Default::default()
        };
        want_err(c.list_key_versions(&req).await, "AuthError", is_auth)
    };
    t.check(
        "[auth] a garbage Authorization header -> AuthError on all four endpoints",
        r.await,
    );
    t.check(
        "[auth] no Authorization header -> AuthError",
        want_err(get(&bad(&[]), store, key).await, "AuthError", is_auth),
    );
    // The contract's test vector: a valid signature made at 1700000000, far more than 24 h ago.
    let expired = "035be5e9478209674a96e60f1f037f6176540fd001fa1d64694770c56a7709c42cfacd4f04afbbcd95d4bc143df56507f6407bd2a981ca10f216eb8888f7ceb7117795ae377c33e6304af9c82f07e76408c9e846214fd4126e5f771626852e0d801700000000";
    t.check(
        "[auth] an expired signature (made at 1700000000) -> AuthError",
        want_err(
            get(&bad(&[("Authorization", expired)]), store, key).await,
            "AuthError",
            is_auth,
        ),
    );
    let r = async {
        // A fresh SigsAuthProvider header whose public key is swapped for another one.
        let h = sigs.get_headers(&[]).await.map_err(|e| e.to_string())?;
        let good = h.get("Authorization").cloned().unwrap_or_default();
        let other = SecretKey::new(&mut thread_rng())
            .public_key(&secp)
            .to_string();
        if good.len() < 66 || other.len() != 66 {
            return Err(format!("unexpected header shape {good:?}"));
        }
        let forged = format!("{other}{}", &good[66..]);
        want_err(
            get(&bad(&[("Authorization", &forged)]), store, key).await,
            "AuthError",
            is_auth,
        )
    };
    t.check(
        "[auth] a signature that does not match the public key -> AuthError",
        r.await,
    );
    t.check(
        "[auth] a bearer token that is not a JWT -> AuthError",
        want_err(
            get(&bad(&[("Authorization", "Bearer not.a.jwt")]), store, key).await,
            "AuthError",
            is_auth,
        ),
    );
    let r = async {
        // Flip one character in the middle of the issued token's signature.
        let jwt = token.trim_start_matches("Bearer ");
        let sig_start = jwt
            .rfind('.')
            .map(|i| i + 1)
            .ok_or("token has no signature")?;
        let mid = sig_start + (jwt.len() - sig_start) / 2;
        let flipped = if &jwt[mid..mid + 1] == "A" { "B" } else { "A" };
        let tampered = format!("Bearer {}{}{}", &jwt[..mid], flipped, &jwt[mid + 1..]);
        want_err(
            get(&bad(&[("Authorization", &tampered)]), store, key).await,
            "AuthError",
            is_auth,
        )
    };
    t.check(
        "[auth] the issued JWT with a tampered signature -> AuthError",
        r.await,
    );

    if let Ok(limited) = std::env::var("VSS_RATE_LIMITED_URL") {
        rate_limit_suite(&mut t, &format!("{}/vss", limited.trim_end_matches('/')), sigs).await;
    }

    if let Ok(key) = std::env::var("VSS_FEED_KEY") {
        feed_writes(&mut t, &vss_url, &key).await;
    }

    println!("{} passed, 0 failed", t.passed);
}

/// The writes whose changes run.sh then reads from the change feed (through vssctl): with the
/// signature key `key` (64 hex digits), in the store "rust-feed", which run.sh follows before.
async fn feed_writes(t: &mut Report, vss_url: &str, key: &str) {
    let key: SecretKey = key.trim().parse().expect("VSS_FEED_KEY: 64 hex digits");
    let c = client_with(vss_url, Arc::new(SigsAuthProvider::new(key, HashMap::new())));
    let s = "rust-feed";
    let r = async {
        ok(put(&c, s, None, vec![kv("a", 0, b"1"), kv("b", 0, b"2")], vec![]).await, "create a and b")?;
        ok(put(&c, s, Some(0), vec![kv("a", 1, b"3")], vec![]).await, "update a, bump the global version")?;
        ok(delete(&c, s, "b", 1).await, "delete b")
    }
    .await;
    t.check("feed: writes for the change feed (create, update with global version, delete)", r);
}

/// Against a server run with `--rate-limit 2 --rate-burst 2`: a request over the limit is an
/// InternalServerError saying "rate limited" (which LDK Node's retry policy retries), and a
/// client with that policy gets through once the bucket refills.
async fn rate_limit_suite(t: &mut Report, vss_url: &str, sigs: Arc<dyn VssHeaderProvider>) {
    let once = client_with(vss_url, sigs.clone());
    let r = async {
        // The burst of two passes (the key does not exist), the third is refused.
        for i in 0..2 {
            want_err(get(&once, "limited", "missing").await, "NoSuchKeyError", is_no_such_key)
                .map_err(|e| format!("request {} of the burst: {e}", i + 1))?;
        }
        match get(&once, "limited", "missing").await {
            Err(VssError::InternalServerError(m)) if m.contains("rate limited") => Ok(()),
            other => Err(format!("expected InternalServerError(\"rate limited\"), got {other:?}")),
        }
    };
    t.check(
        "[rate-limit] over the limit -> InternalServerError(\"rate limited\"), which LDK retries",
        r.await,
    );
    let retrying: Client = VssClient::new_with_headers(
        vss_url.to_string(),
        ExponentialBackoffRetryPolicy::new(Duration::from_millis(100))
            .with_max_attempts(10)
            .skip_retry_on_error(is_client_error as fn(&VssError) -> bool),
        sigs,
    );
    let r = async {
        ok(
            put(&retrying, "limited", None, vec![kv("k", -1, b"v")], vec![]).await,
            "put with LDK's retry policy",
        )?;
        want_kv(&ok(get(&retrying, "limited", "k").await, "get")?, "k", 1, b"v")
    };
    t.check(
        "[rate-limit] a client with LDK's backoff policy gets through when the bucket refills",
        r.await,
    );
}
