//! Client-side encryption compatible with vss-client-ng and LDK Node, from the real crates.
//!
//! - `encryption vectors` prints the known-answer vectors and the cross-language fixture
//!   (compat/rust-client/encryption-vectors.json is this output, committed).
//! - `encryption write <prefix>` / `encryption read <prefix>` run the fixture against the
//!   server at `$VSS_BASE_URL` (VSS HTTP API at `$VSS_BASE_URL/vss`), with the fixture read from
//!   `$VSS_ENCRYPTION_VECTORS` (see ENCRYPTION-VECTORS.md and encryption.sh).

mod crypto;
mod fixture;
mod store;
mod vectors;

fn usage() -> ! {
    eprintln!("usage: encryption vectors | write <store-id-prefix> | read <store-id-prefix>");
    std::process::exit(2);
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set");
        std::process::exit(2);
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, prefix) = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["vectors"] => {
            let doc = vectors::build();
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("serializable")
            );
            return;
        }
        [command @ ("write" | "read"), prefix] => (command.to_string(), prefix.to_string()),
        _ => usage(),
    };
    let path = env("VSS_ENCRYPTION_VECTORS");
    let doc: serde_json::Value = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let enc = store::EncryptedStore::new(
        &format!("{}/vss", env("VSS_BASE_URL")),
        fixture::keys_of(&doc),
    );
    if command == "write" {
        match fixture::write(&enc, &doc, &prefix).await {
            Ok(ops) => println!("rust wrote {prefix}: {ops} operations"),
            Err(e) => {
                eprintln!("rust write {prefix}: {e}");
                std::process::exit(1);
            }
        }
    } else {
        let checks = fixture::read(&enc, &doc, &prefix).await;
        if checks.failed.is_empty() {
            println!("{} checks passed", checks.passed);
        } else {
            eprintln!("rust read {prefix}: {} checks failed:", checks.failed.len());
            for f in &checks.failed {
                eprintln!("  {f}");
            }
            println!(
                "{} checks passed, {} failed",
                checks.passed,
                checks.failed.len()
            );
            std::process::exit(1);
        }
    }
}
