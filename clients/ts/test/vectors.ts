// The shared known-answer vectors, compat/rust-client/encryption-vectors.json, made by the
// real Rust crates (layout: compat/rust-client/ENCRYPTION-VECTORS.md).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { VerificationErrorKind } from "@govss/vss-client";

export type ErrorKind = VerificationErrorKind | null;

export interface SealedVector {
  name: string;
  data_encryption_key: string;
  value_hex: string;
  version: bigint;
  aad_hex: string;
  nonce_hex: string;
  plaintext_blob_hex: string;
  ciphertext_hex: string;
  tag_hex: string;
  cipher_format: string;
  storable_hex: string;
}

export interface StoreKeyLayout {
  store_key: string;
  prefix: string;
  aad_hex: string;
}

export type FixtureOp =
  | { op: "put"; items: { key: string; version: bigint; value_hex: string }[] }
  | { op: "delete"; key: string; version: bigint }
  | { op: "ldk_open"; schema: "V0" | "V1" }
  | { op: "ldk_write"; primary: string; secondary: string; key: string; value_hex: string }
  | { op: "ldk_remove"; primary: string; secondary: string; key: string }
  | { op: "raw_copy"; from: string; to: string; version: bigint }
  | { op: "raw_flip"; key: string; version: bigint }
  | { op: "raw_save"; key: string }
  | { op: "raw_restore"; key: string; version: bigint };

export interface FixtureRead {
  primary?: string;
  secondary?: string;
  key: string;
  store_key: string;
  error: ErrorKind;
  value_hex?: string;
  version?: bigint;
  sealed_version?: bigint;
  undetected?: string;
}

export interface FixtureStore {
  store_id_suffix: string;
  layout: "vss-client-ng" | "ldk";
  description: string;
  ops: FixtureOp[];
  expect: {
    raw_keys: { store_key: string; version: bigint }[];
    list?: { key: string; version: bigint }[];
    schema?: "V0" | "V1";
    namespaces?: { primary: string; secondary: string; keys: string[] }[];
    reads: FixtureRead[];
  };
}

export interface Vectors {
  format: number;
  keys: {
    wallet_seed: string;
    bip32_path: string;
    vss_seed: string;
    prk: string;
    data_encryption_key: string;
    obfuscation_master_key: string;
  };
  obfuscated_keys: { obfuscation_master_key: string; key: string; key_utf8_hex: string; obfuscated: string }[];
  sealed: SealedVector[];
  ldk_store_keys: { primary: string; secondary: string; key: string; v1: StoreKeyLayout; v0: StoreKeyLayout }[];
  ldk_schema_version: {
    primary: string;
    secondary: string;
    key: string;
    store_key: string;
    v1_value_hex: string;
    v0_value_hex: string;
    v0_detection_prefix: string;
    sealed_v1: SealedVector;
  };
  negative_storables: {
    name: string;
    description: string;
    data_encryption_key: string;
    aad_hex: string;
    storable_hex: string;
    server_version: bigint;
    error: ErrorKind;
  }[];
  negative_keys: { name: string; description: string; obfuscated: string; error: ErrorKind }[];
  version_checks: { sealed_version: bigint; server_version: bigint; error: ErrorKind }[];
  fixture: { wallet_seed: string; stores: FixtureStore[] };
}

/** vectorsPath is $VSS_ENCRYPTION_VECTORS, else the repository's committed file. */
export function vectorsPath(): string {
  return (
    process.env.VSS_ENCRYPTION_VECTORS ||
    fileURLToPath(new URL("../../../compat/rust-client/encryption-vectors.json", import.meta.url))
  );
}

/**
 * loadVectors reads the vectors file. Versions are 64-bit integers (one is i64::MAX, which a
 * double cannot hold), so every version member is read as a bigint from its digits.
 */
export function loadVectors(path = vectorsPath()): Vectors {
  const text = readFileSync(path, "utf8").replace(/("(?:version|sealed_version|server_version)":\s*)(-?\d+)/g, '$1"$2"');
  return JSON.parse(text, function (this: unknown, name: string, value: unknown) {
    return (name === "version" || name === "sealed_version" || name === "server_version") && typeof value === "string"
      ? BigInt(value)
      : value;
  }) as Vectors;
}

/** hex decodes lowercase hexadecimal. */
export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "hex"));
}

/** toHex encodes bytes as lowercase hexadecimal. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}
