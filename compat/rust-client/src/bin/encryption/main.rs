//! Client-side encryption compatible with vss-client-ng and LDK Node, from the real crates.
//!
//! - `encryption vectors` prints the known-answer vectors and the cross-language fixture
//!   (compat/rust-client/encryption-vectors.json is this output, committed).
//! - `encryption write <prefix>` / `encryption read <prefix>` run the fixture against the
//!   server at `$VSS_BASE_URL` (VSS HTTP API at `$VSS_BASE_URL/vss`), with the fixture read from
//!   `$VSS_ENCRYPTION_VECTORS` (see ENCRYPTION-VECTORS.md and encryption.sh).

mod crypto;
mod vectors;

fn usage() -> ! {
    eprintln!("usage: encryption vectors | write <store-id-prefix> | read <store-id-prefix>");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
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
        }
        _ => usage(),
    }
}
