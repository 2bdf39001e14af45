// Client-side encryption without a server: the known answers of vss-client-ng 0.6.0's own
// tests, and each primitive checked against an independent implementation (Node's
// OpenSSL for ChaCha20-Poly1305 and HMAC, BIP32 spelled out with @noble/curves).
import assert from "node:assert/strict";
import { createCipheriv, createHmac } from "node:crypto";
import { inspect } from "node:util";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  CIPHER_FORMAT,
  EncryptionMetadataSchema,
  KeyObfuscator,
  Keys,
  PlaintextBlobSchema,
  StorableBuilder,
  StorableSchema,
  VerificationError,
  VerificationErrorKind,
  checkSealedVersion,
  keysFromVssSeed,
  keysFromWalletSeed,
  platformEntropy,
  signingKeyFromWalletSeed,
  vssSeedFromWalletSeed,
} from "@govss/vss-client";
import { expectVerificationError } from "./helpers.js";

const encoder = new TextEncoder();
const counting = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 256);

// vss-client-ng 0.6.0, src/util/storable_builder.rs, decrypt_v031_storable: a Storable
// written by v0.3.1 with key = bytes 0..31, empty associated data, value
// "backward_compat_test_data", version 42 (its nonce is the old 8-byte counter after 4 zeros).
const v031Storable = Uint8Array.from([
  0x0a, 0x1d, 0x32, 0x19, 0xe9, 0xfb, 0x45, 0xd7, 0x42, 0xf5, 0x6c, 0x40, 0x1b, 0x74, 0x13, 0xe7, 0xae, 0x07, 0xfd, 0x81,
  0xe1, 0x43, 0x3a, 0xf2, 0x86, 0x3c, 0xe8, 0x8f, 0x01, 0xf8, 0x6c, 0x12, 0x32, 0x0a, 0x10, 0x43, 0x68, 0x61, 0x43, 0x68,
  0x61, 0x32, 0x30, 0x50, 0x6f, 0x6c, 0x79, 0x31, 0x33, 0x30, 0x35, 0x12, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,
  0x03, 0x04, 0x05, 0x06, 0x07, 0x1a, 0x10, 0x87, 0x16, 0x35, 0x02, 0x26, 0x1e, 0x30, 0xec, 0x7c, 0xf1, 0x4b, 0x79, 0x70,
  0xa2, 0x41, 0x16,
]);
const v031Nonce = Uint8Array.of(0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7);

/** hmacSha256 is Node's (OpenSSL's) HMAC-SHA256, keyed with key. */
function hmacSha256(key: Uint8Array, msg: Uint8Array): Uint8Array {
  return createHmac("sha256", key).update(msg).digest();
}

/** opensslSeal encrypts with Node's (OpenSSL's) ChaCha20-Poly1305: ciphertext, then the tag. */
function opensslSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): [Buffer, Buffer] {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [data, cipher.getAuthTag()];
}

describe("KeyObfuscator", () => {
  it("matches vss-client-ng's known answer", () => {
    const obfuscator = new KeyObfuscator(new Uint8Array(32).fill(42));
    const obfuscated = obfuscator.obfuscate("a_semi_secret_key");
    assert.equal(obfuscated, "cMoet5WTvl0nYds+VW7JPCtXUq24DtMG2dR9apAi/T5jy8eNIEyDrUAJBS4geeUuX+XGXPqlizIByOip2g");
    assert.equal(obfuscator.deobfuscate(obfuscated), "a_semi_secret_key");
  });

  it("deobfuscates a key obfuscated by vss-client-ng 0.3.1", () => {
    const obfuscator = new KeyObfuscator("ab".repeat(32));
    assert.equal(
      obfuscator.deobfuscate("nxrixRQPGawY+a9JFLThii0RgeADtEdSjh2YDgpZhBKOuw6GKr5UAIIwsQCathJlZsmuSku+RGB1/JuxFUMQGoAwa+M8tg"),
      "my_storage_key_v031_compat",
    );
  });

  it("is deterministic and round-trips any key, the empty one and non-ASCII ones included", () => {
    const obfuscator = new KeyObfuscator(counting(32));
    for (const key of ["", "k", "a#b", "channel_monitors/abc", "ünïcødé ✓", "x".repeat(600)]) {
      const obfuscated = obfuscator.obfuscate(key);
      assert.equal(obfuscator.obfuscate(key), obfuscated);
      assert.match(obfuscated, /^[A-Za-z0-9+/]+$/, "base64, standard alphabet, no padding");
      assert.equal(obfuscator.deobfuscate(obfuscated), key);
    }
  });

  it("is the construction the crate describes, checked with OpenSSL", () => {
    const master = counting(32);
    const hkdf = (ikm: Uint8Array, salt: string | Uint8Array) => hmacSha256(typeof salt === "string" ? encoder.encode(salt) : salt, ikm);
    const prk = hkdf(master, "pseudo_random_key");
    const obfuscationKey = hkdf(prk, "obfuscation_key");
    const hashingKey = hkdf(prk, Buffer.concat([obfuscationKey, encoder.encode("hashing_key")]));
    // The crate's synthetic nonce is hkdf(hashing key, material): HMAC keyed with the material.
    const synthetic = (material: Uint8Array) => Buffer.concat([Buffer.alloc(4), hmacSha256(material, hashingKey).subarray(0, 8)]);
    const key = encoder.encode("monitor_updates#42");
    const nonce = synthetic(key);
    const [ciphertext, tag] = opensslSeal(obfuscationKey, nonce, key, new Uint8Array());
    const [wrapped, wrappedTag] = opensslSeal(obfuscationKey, synthetic(ciphertext), nonce, new Uint8Array());
    const want = Buffer.concat([ciphertext, tag, wrapped, wrappedTag]).toString("base64").replace(/=+$/, "");
    assert.equal(new KeyObfuscator(master).obfuscate("monitor_updates#42"), want);
  });

  it("refuses what it did not obfuscate, as a FORMAT VerificationError", () => {
    const obfuscator = new KeyObfuscator(counting(32));
    const good = obfuscator.obfuscate("key");
    const flipped = (good[0] === "A" ? "B" : "A") + good.slice(1);
    const cases: [string, string][] = [
      ["not base64", "%%%"],
      ["padded", good + "="],
      ["too short", "AAAA"],
      ["altered", flipped],
      ["another master key", new KeyObfuscator(new Uint8Array(32).fill(9)).obfuscate("key")],
      ["the empty string", ""],
    ];
    for (const [name, input] of cases) {
      const err = expectVerificationError(() => obfuscator.deobfuscate(input), VerificationErrorKind.FORMAT, name);
      assert.equal(err.storageKey, input, name);
    }
  });

  it("takes a 32-byte master key only", () => {
    assert.throws(() => new KeyObfuscator(new Uint8Array(31)), /32 bytes/);
    assert.throws(() => new KeyObfuscator("zz".repeat(32)), /hexadecimal/);
  });
});

describe("StorableBuilder", () => {
  it("opens the Storable vss-client-ng 0.3.1 wrote, and seals the same bytes with its nonce", () => {
    const builder = new StorableBuilder(counting(32), () => v031Nonce.slice());
    const opened = builder.deconstruct(v031Storable, new Uint8Array(), "v031");
    assert.equal(new TextDecoder().decode(opened.value), "backward_compat_test_data");
    assert.equal(opened.sealedVersion, 42n);
    assert.deepEqual(builder.build(encoder.encode("backward_compat_test_data"), 42n, new Uint8Array()), v031Storable);
  });

  it("is the construction the crate describes, checked with OpenSSL", () => {
    const key = counting(32);
    const nonce = Uint8Array.from({ length: 12 }, (_, i) => 200 + i);
    const aad = encoder.encode("the storage key");
    for (const version of [0n, 7n, -1n, (1n << 62n) + 5n]) {
      const blob = toBinary(PlaintextBlobSchema, create(PlaintextBlobSchema, { value: encoder.encode("secret"), version }));
      const [data, tag] = opensslSeal(key, nonce, blob, aad);
      const want = toBinary(
        StorableSchema,
        create(StorableSchema, { data, encryptionMetadata: create(EncryptionMetadataSchema, { cipherFormat: "ChaCha20Poly1305", nonce, tag }) }),
      );
      assert.deepEqual(new StorableBuilder(key, () => nonce.slice()).build(encoder.encode("secret"), version, aad), want);
    }
  });

  it("round-trips values and versions with fresh random nonces", () => {
    const builder = new StorableBuilder(counting(32));
    const aad = encoder.encode("A");
    const nonces = new Set<string>();
    for (const [value, version] of [
      [encoder.encode("secret"), 8n],
      [new Uint8Array(), 0n],
      [new Uint8Array(1 << 20).fill(7), -1n],
    ] as const) {
      const sealed = builder.build(value, version, aad);
      nonces.add(Buffer.from(fromBinary(StorableSchema, sealed).encryptionMetadata!.nonce).toString("hex"));
      const opened = builder.deconstruct(sealed, aad, "A");
      assert.deepEqual(opened.value, value);
      assert.equal(opened.sealedVersion, version);
    }
    assert.equal(nonces.size, 3, "every value gets its own nonce");
  });

  it("refuses another key, other associated data and any altered byte (AUTHENTICATION)", () => {
    const builder = new StorableBuilder(counting(32));
    const sealed = builder.build(encoder.encode("secret_a"), 8n, encoder.encode("A"));
    expectVerificationError(() => builder.deconstruct(sealed, encoder.encode("B"), "B"), VerificationErrorKind.AUTHENTICATION, "other aad");
    expectVerificationError(
      () => new StorableBuilder(new Uint8Array(32).fill(1)).deconstruct(sealed, encoder.encode("A"), "A"),
      VerificationErrorKind.AUTHENTICATION,
      "another key",
    );
    const storable = fromBinary(StorableSchema, sealed);
    for (const part of ["data", "nonce", "tag"] as const) {
      const altered = structuredClone(storable);
      const bytes = part === "data" ? altered.data : altered.encryptionMetadata![part];
      bytes[0]! ^= 1;
      const err = expectVerificationError(
        () => builder.deconstruct(toBinary(StorableSchema, altered), encoder.encode("A"), "A"),
        VerificationErrorKind.AUTHENTICATION,
        part,
      );
      assert.equal(err.storageKey, "A");
    }
  });

  it("refuses what is not a ChaCha20Poly1305 Storable around a PlaintextBlob (FORMAT)", () => {
    const key = counting(32);
    const builder = new StorableBuilder(key);
    const aad = encoder.encode("k");
    const good = fromBinary(StorableSchema, builder.build(encoder.encode("v"), 1n, aad));
    const variant = (change: (s: typeof good) => void) => {
      const s = structuredClone(good);
      change(s);
      return toBinary(StorableSchema, s);
    };
    // A blob that decrypts but is not a PlaintextBlob: field 1 as a varint is a wire-type error.
    const nonce = new Uint8Array(12).fill(3);
    const [data, tag] = opensslSeal(key, nonce, Uint8Array.of(0x0b), aad);
    const notABlob = toBinary(
      StorableSchema,
      create(StorableSchema, { data, encryptionMetadata: { cipherFormat: CIPHER_FORMAT, nonce, tag } }),
    );
    const cases: [string, Uint8Array][] = [
      ["plaintext", encoder.encode("hello, world")],
      ["empty", new Uint8Array()],
      ["no metadata", variant((s) => (s.encryptionMetadata = undefined))],
      ["another cipher", variant((s) => (s.encryptionMetadata!.cipherFormat = "AES256GCM"))],
      ["no cipher", variant((s) => (s.encryptionMetadata!.cipherFormat = ""))],
      ["short nonce", variant((s) => (s.encryptionMetadata!.nonce = s.encryptionMetadata!.nonce.subarray(0, 8)))],
      ["long tag", variant((s) => (s.encryptionMetadata!.tag = new Uint8Array(17)))],
      ["not a PlaintextBlob", notABlob],
    ];
    for (const [name, stored] of cases) {
      expectVerificationError(() => builder.deconstruct(stored, aad, "k"), VerificationErrorKind.FORMAT, name);
    }
  });

  it("draws nonces from the platform's CSPRNG by default", () => {
    assert.equal(platformEntropy(12).length, 12);
    assert.notDeepEqual(platformEntropy(12), platformEntropy(12));
    assert.throws(() => new StorableBuilder(counting(32), () => new Uint8Array(8)).build(new Uint8Array(), 0n, new Uint8Array()), /12 bytes/);
  });
});

describe("checkSealedVersion", () => {
  it("wants the server's version one above a conditional write's, and checks nothing for -1", () => {
    checkSealedVersion("k", 0n, 1n);
    checkSealedVersion("k", 41n, 42n);
    checkSealedVersion("k", -1n, 1n);
    checkSealedVersion("k", -1n, 99n);
    for (const [sealed, server] of [
      [0n, 2n],
      [5n, 5n],
      [5n, 7n],
      [3n, 1n],
    ] as const) {
      const err = expectVerificationError(() => checkSealedVersion("k", sealed, server), VerificationErrorKind.VERSION, `${sealed}/${server}`);
      assert.equal(err.sealedVersion, sealed);
      assert.equal(err.serverVersion, server);
    }
  });
});

describe("keys", () => {
  it("derive from a VSS seed as LDK Node does, checked with OpenSSL's HMAC", () => {
    const vssSeed = counting(32);
    const prk = hmacSha256(encoder.encode("pseudo_random_key"), vssSeed);
    const dek = hmacSha256(encoder.encode("data_encryption_key"), prk);
    const omk = hmacSha256(Buffer.concat([dek, encoder.encode("obfuscation_key")]), prk);
    const keys = keysFromVssSeed(vssSeed);
    assert.deepEqual(keys.dataEncryptionKey, new Uint8Array(dek));
    assert.deepEqual(keys.obfuscationMasterKey, new Uint8Array(omk));
    assert.deepEqual(keysFromVssSeed(Buffer.from(vssSeed).toString("hex")), keys);
  });

  it("derive the VSS seed as the private key of BIP32 m/877', and the signing key of m/877'/139'", () => {
    // BIP32 spelled out: the master key from HMAC-SHA512("Bitcoin seed", seed), then each
    // hardened child i: HMAC-SHA512(chain code, 0x00 || key || ser32(i + 2^31)), whose left
    // half is added to the key modulo the curve order, the right half the child's chain code.
    const n = secp256k1.Point.CURVE().n;
    const big = (b: Uint8Array) => BigInt("0x" + Buffer.from(b).toString("hex"));
    const bytes32 = (x: bigint) => Buffer.from(x.toString(16).padStart(64, "0"), "hex");
    const hardened = ([key, chain]: [Buffer, Buffer], i: number): [Buffer, Buffer] => {
      const index = Buffer.alloc(4);
      index.writeUInt32BE(0x80000000 + i);
      const J = createHmac("sha512", chain).update(Buffer.concat([Buffer.from([0]), key, index])).digest();
      return [bytes32((big(J.subarray(0, 32)) + big(key)) % n), J.subarray(32)];
    };
    for (const seed of [counting(64), new Uint8Array(16).fill(0xee), Buffer.from("000102030405060708090a0b0c0d0e0f", "hex")]) {
      const I = createHmac("sha512", "Bitcoin seed").update(seed).digest();
      const vss = hardened([I.subarray(0, 32), I.subarray(32)], 877);
      assert.deepEqual(vssSeedFromWalletSeed(seed), new Uint8Array(vss[0]));
      assert.deepEqual(keysFromWalletSeed(seed), keysFromVssSeed(vss[0]));
      assert.deepEqual(signingKeyFromWalletSeed(seed), new Uint8Array(hardened(vss, 139)[0]));
    }
  });

  it("refuse seeds of the wrong size", () => {
    assert.throws(() => keysFromWalletSeed(new Uint8Array(15)), /16 to 64 bytes/);
    assert.throws(() => keysFromWalletSeed(new Uint8Array(65)), /16 to 64 bytes/);
    assert.throws(() => keysFromVssSeed(new Uint8Array(64)), /32 bytes/);
    assert.throws(() => keysFromWalletSeed("abc"), /hexadecimal/);
  });

  it("never print their bytes", () => {
    const keys = new Keys(new Uint8Array(32).fill(0xab), "cd".repeat(32));
    for (const shown of [String(keys), JSON.stringify({ keys }), inspect(keys), inspect({ keys }, { depth: 5 }), `${keys}`]) {
      assert.doesNotMatch(shown, /ab|cd|171|205/, shown);
      assert.match(shown, /redacted/);
    }
  });
});

describe("VerificationError", () => {
  it("is an Error with a kind and the storage key", () => {
    const err = new VerificationError(VerificationErrorKind.VERSION, "abc", "detail", { sealedVersion: 1n, serverVersion: 5n });
    assert.ok(err instanceof Error);
    assert.equal(err.name, "VerificationError");
    assert.equal(err.kind, "VERSION");
    assert.match(err.message, /VERSION.*"abc".*detail/);
    assert.equal(err.detail, "detail");
    assert.equal(err.storageKey, "abc");
    assert.deepEqual([err.sealedVersion, err.serverVersion], [1n, 5n]);
  });
});
