// Client-side encryption, byte for byte as the Rust client that wallets use today:
// vss-client-ng 0.6.0 (src/util/storable_builder.rs: StorableBuilder; src/util/key_obfuscator.rs:
// KeyObfuscator) and the key derivation of LDK Node's VSS store (src/io/vss_store.rs and
// src/builder.rs at commit 77f9564e). The primitives come from audited libraries that run in
// browsers and Node alike: ChaCha20-Poly1305 (RFC 8439) from @noble/ciphers, HMAC-SHA256 from
// @noble/hashes, BIP32 from @scure/bip32, base64 from @scure/base; nonces from the platform's
// CSPRNG (globalThis.crypto.getRandomValues).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes, hexToBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { base64nopad } from "@scure/base";
import { HARDENED_OFFSET, HDKey } from "@scure/bip32";
import {
  EncryptionMetadataSchema,
  PlaintextBlobSchema,
  StorableSchema,
  type KeyValue,
} from "./gen/vss/v1/vss_pb.js";

/** CIPHER_FORMAT names the only cipher a Storable may use, as vss-client-ng writes it. */
export const CIPHER_FORMAT = "ChaCha20Poly1305";

const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const KEY_LENGTH = 32;

/**
 * VSS_HARDENED_CHILD_INDEX is the BIP32 child (hardened) of the wallet's master key whose
 * private key LDK Node uses as the "VSS seed" (m/877').
 */
export const VSS_HARDENED_CHILD_INDEX = 877;

/**
 * VerificationErrorKind says why a value or key failed verification:
 * - FORMAT: not a Storable, bad or missing metadata, an unknown cipher, a blob that does
 *   not decode, or a key that does not deobfuscate;
 * - AUTHENTICATION: the tag does not verify: the data was tampered with, sealed under
 *   another key, or moved from another storage key;
 * - VERSION: the version sealed in the value disagrees with the version the server
 *   reports (a rolled-back conditional write).
 */
export const VerificationErrorKind = {
  FORMAT: "FORMAT",
  AUTHENTICATION: "AUTHENTICATION",
  VERSION: "VERSION",
} as const;

/** VerificationErrorKind is one of the kinds above. */
export type VerificationErrorKind = (typeof VerificationErrorKind)[keyof typeof VerificationErrorKind];

/**
 * VerificationError is how every failed verification surfaces: a value or key read from
 * the server that cannot be trusted. No data comes with it. storageKey is the key as the
 * server stores it (obfuscated); for VERSION, sealedVersion and serverVersion say what
 * disagreed.
 */
export class VerificationError extends Error {
  override name = "VerificationError";
  /** kind says what failed. */
  readonly kind: VerificationErrorKind;
  /** storageKey is the key as stored on the server. */
  readonly storageKey: string;
  /** detail says what failed, without the kind and key. */
  readonly detail: string;
  /** sealedVersion is the version sealed in the value (VERSION only). */
  readonly sealedVersion: bigint | undefined;
  /** serverVersion is the version the server reported (VERSION only). */
  readonly serverVersion: bigint | undefined;

  constructor(
    kind: VerificationErrorKind,
    storageKey: string,
    detail: string,
    versions: { sealedVersion?: bigint; serverVersion?: bigint } = {},
    cause?: unknown,
  ) {
    super(
      `verification failed (${kind}) for storage key ${JSON.stringify(storageKey)}: ${detail}`,
      cause === undefined ? undefined : { cause },
    );
    this.kind = kind;
    this.storageKey = storageKey;
    this.detail = detail;
    this.sealedVersion = versions.sealedVersion;
    this.serverVersion = versions.serverVersion;
  }
}

/** hkdf is LDK Node's and vss-client-ng's "hkdf": HMAC-SHA256 keyed with salt over ikm. */
function hkdf(ikm: Uint8Array, salt: Uint8Array): Uint8Array {
  return hmac(sha256, salt, ikm);
}

/** bytesOf reads a byte string given as bytes or hexadecimal, checking its length. */
function bytesOf(what: string, input: Uint8Array | string, minLength: number, maxLength = minLength): Uint8Array {
  let bytes: Uint8Array;
  if (typeof input === "string") {
    const hex = input.trim();
    if (!/^([0-9a-fA-F]{2})*$/.test(hex)) {
      throw new Error(`${what}: want hexadecimal characters, two per byte`);
    }
    bytes = hexToBytes(hex);
  } else {
    bytes = Uint8Array.from(input);
  }
  if (bytes.length < minLength || bytes.length > maxLength) {
    const want = minLength === maxLength ? `${minLength} bytes` : `${minLength} to ${maxLength} bytes`;
    throw new Error(`${what}: want ${want}, got ${bytes.length}`);
  }
  return bytes;
}

const redacted = "Keys(dataEncryptionKey, obfuscationMasterKey: redacted)";

/**
 * Keys are the two secrets of client-side encryption: dataEncryptionKey seals values
 * (ChaCha20-Poly1305), obfuscationMasterKey hides key names (KeyObfuscator). Both are 32
 * bytes. They print as a placeholder (toString, JSON, Node's inspect), never as bytes.
 */
export class Keys {
  /** dataEncryptionKey seals and opens values. */
  readonly dataEncryptionKey: Uint8Array;
  /** obfuscationMasterKey derives the keys of the KeyObfuscator. */
  readonly obfuscationMasterKey: Uint8Array;

  /** The constructor takes the two keys as bytes or hexadecimal (32 bytes each). */
  constructor(dataEncryptionKey: Uint8Array | string, obfuscationMasterKey: Uint8Array | string) {
    this.dataEncryptionKey = bytesOf("data encryption key", dataEncryptionKey, KEY_LENGTH);
    this.obfuscationMasterKey = bytesOf("obfuscation master key", obfuscationMasterKey, KEY_LENGTH);
  }

  toString(): string {
    return redacted;
  }

  toJSON(): string {
    return redacted;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return redacted;
  }
}

/**
 * keysFromVssSeed derives the Keys from a 32-byte VSS seed (bytes or hex) as LDK Node's
 * derive_data_encryption_and_obfuscation_keys does: prk = hkdf(vssSeed,
 * "pseudo_random_key"), dataEncryptionKey = hkdf(prk, "data_encryption_key"),
 * obfuscationMasterKey = hkdf(prk, dataEncryptionKey || "obfuscation_key"), where
 * hkdf(ikm, salt) = HMAC-SHA256(key = salt, message = ikm).
 */
export function keysFromVssSeed(vssSeed: Uint8Array | string): Keys {
  const seed = bytesOf("VSS seed", vssSeed, KEY_LENGTH);
  const prk = hkdf(seed, utf8ToBytes("pseudo_random_key"));
  const dataEncryptionKey = hkdf(prk, utf8ToBytes("data_encryption_key"));
  const obfuscationMasterKey = hkdf(prk, concatBytes(dataEncryptionKey, utf8ToBytes("obfuscation_key")));
  return new Keys(dataEncryptionKey, obfuscationMasterKey);
}

/**
 * vssSeedFromWalletSeed returns the VSS seed LDK Node derives from the wallet's seed
 * (16 to 64 bytes; LDK Node's is 64, bytes or hex): the private key of the hardened
 * child m/877' of the BIP32 master key. The network a wallet uses does not change it.
 */
export function vssSeedFromWalletSeed(walletSeed: Uint8Array | string): Uint8Array {
  const seed = bytesOf("wallet seed", walletSeed, 16, 64);
  const child = HDKey.fromMasterSeed(seed).deriveChild(HARDENED_OFFSET + VSS_HARDENED_CHILD_INDEX);
  if (!child.privateKey) {
    throw new Error("wallet seed: BIP32 derived no private key");
  }
  return child.privateKey;
}

/**
 * VSS_SIGNING_CHILD_INDEX is the hardened child of m/877' whose private key LDK Node signs
 * its VSS requests with under the signature scheme (m/877'/139').
 */
export const VSS_SIGNING_CHILD_INDEX = 139;

/**
 * signingKeyFromWalletSeed returns the private key LDK Node signs VSS requests with when it
 * uses the signature scheme (vss-client-ng's SigsAuthProvider, built by LDK Node's
 * VssStoreBuilder::build_with_sigs_auth): that of m/877'/139'. As a client's
 * { privateKey } it makes the client the same user as the wallet.
 */
export function signingKeyFromWalletSeed(walletSeed: Uint8Array | string): Uint8Array {
  const seed = bytesOf("wallet seed", walletSeed, 16, 64);
  const child = HDKey.fromMasterSeed(seed)
    .deriveChild(HARDENED_OFFSET + VSS_HARDENED_CHILD_INDEX)
    .deriveChild(HARDENED_OFFSET + VSS_SIGNING_CHILD_INDEX);
  if (!child.privateKey) {
    throw new Error("wallet seed: BIP32 derived no private key");
  }
  return child.privateKey;
}

/**
 * keysFromWalletSeed derives the Keys from a wallet's seed exactly as LDK Node does:
 * keysFromVssSeed(vssSeedFromWalletSeed(walletSeed)).
 */
export function keysFromWalletSeed(walletSeed: Uint8Array | string): Keys {
  return keysFromVssSeed(vssSeedFromWalletSeed(walletSeed));
}

/** encryptDetached encrypts plaintext with ChaCha20-Poly1305, returning ciphertext and tag apart. */
function encryptDetached(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): [Uint8Array, Uint8Array] {
  const sealed = chacha20poly1305(key, nonce, aad).encrypt(plaintext);
  return [sealed.subarray(0, sealed.length - TAG_LENGTH), sealed.subarray(sealed.length - TAG_LENGTH)];
}

/**
 * decryptDetached decrypts ciphertext whose tag travels apart, or returns undefined
 * when the tag does not verify.
 */
function decryptDetached(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad?: Uint8Array,
): Uint8Array | undefined {
  try {
    return chacha20poly1305(key, nonce, aad).decrypt(concatBytes(ciphertext, tag));
  } catch {
    return undefined;
  }
}

/**
 * KeyObfuscator hides key names the way vss-client-ng's KeyObfuscator does: each key is
 * encrypted with ChaCha20-Poly1305 under a synthetic nonce (4 zero bytes, then 8 bytes
 * of an HMAC-SHA256 of the key and a hashing key), and that nonce is itself encrypted under a
 * synthetic nonce of the ciphertext; the result, ciphertext || tag || wrapped nonce ||
 * tag, is written in base64 (standard alphabet, no padding). The same key always gives
 * the same obfuscated key, so a store can be read by key without listing it.
 */
export class KeyObfuscator {
  readonly #obfuscationKey: Uint8Array;
  readonly #hashingKey: Uint8Array;

  /** The constructor derives the obfuscation and hashing keys from the 32-byte master key. */
  constructor(obfuscationMasterKey: Uint8Array | string) {
    const master = bytesOf("obfuscation master key", obfuscationMasterKey, KEY_LENGTH);
    const prk = hkdf(master, utf8ToBytes("pseudo_random_key"));
    this.#obfuscationKey = hkdf(prk, utf8ToBytes("obfuscation_key"));
    this.#hashingKey = hkdf(prk, concatBytes(this.#obfuscationKey, utf8ToBytes("hashing_key")));
  }

  /**
   * #syntheticNonce is 4 zero bytes, then the first 8 bytes of the crate's
   * hkdf(hashing key, material): HMAC-SHA256 keyed with material over the hashing key.
   */
  #syntheticNonce(material: Uint8Array): Uint8Array {
    const nonce = new Uint8Array(NONCE_LENGTH);
    nonce.set(hkdf(this.#hashingKey, material).subarray(0, 8), 4);
    return nonce;
  }

  /** obfuscate returns the obfuscated form of key. */
  obfuscate(key: string): string {
    const plain = utf8ToBytes(key);
    const nonce = this.#syntheticNonce(plain);
    const [ciphertext, tag] = encryptDetached(this.#obfuscationKey, nonce, plain);
    const [wrappedNonce, nonceTag] = encryptDetached(this.#obfuscationKey, this.#syntheticNonce(ciphertext), nonce);
    return base64nopad.encode(concatBytes(ciphertext, tag, wrappedNonce, nonceTag));
  }

  /**
   * deobfuscate returns the key that obfuscatedKey hides, or throws a VerificationError
   * (FORMAT) when it is not one this obfuscator made: bad base64, too short, a tag that
   * does not verify, or not UTF-8.
   */
  deobfuscate(obfuscatedKey: string): string {
    const fail = (detail: string) => new VerificationError(VerificationErrorKind.FORMAT, obfuscatedKey, `cannot deobfuscate the key: ${detail}`);
    let bytes: Uint8Array;
    try {
      bytes = base64nopad.decode(obfuscatedKey);
    } catch {
      throw fail("not base64 (standard alphabet, no padding)");
    }
    const trailer = TAG_LENGTH + NONCE_LENGTH + TAG_LENGTH;
    if (bytes.length < trailer) {
      throw fail(`want at least ${trailer} bytes, got ${bytes.length}`);
    }
    const ciphertext = bytes.subarray(0, bytes.length - trailer);
    const tag = bytes.subarray(bytes.length - trailer, bytes.length - NONCE_LENGTH - TAG_LENGTH);
    const wrappedNonce = bytes.subarray(bytes.length - NONCE_LENGTH - TAG_LENGTH, bytes.length - TAG_LENGTH);
    const nonceTag = bytes.subarray(bytes.length - TAG_LENGTH);
    const nonce = decryptDetached(this.#obfuscationKey, this.#syntheticNonce(ciphertext), wrappedNonce, nonceTag);
    if (!nonce) {
      throw fail("the wrapped nonce does not verify (another obfuscation key, or altered)");
    }
    const plain = decryptDetached(this.#obfuscationKey, nonce, ciphertext, tag);
    if (!plain) {
      throw fail("the key does not verify (another obfuscation key, or altered)");
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(plain);
    } catch {
      throw fail("not UTF-8");
    }
  }
}

/**
 * EntropySource fills nonces: length random bytes. The default, platformEntropy, is the
 * platform's CSPRNG; another source is for known-answer tests only (a repeated nonce
 * under one key gives away the plaintexts and lets tags be forged).
 */
export type EntropySource = (length: number) => Uint8Array;

/** platformEntropy draws bytes from globalThis.crypto.getRandomValues (Web Crypto). */
export const platformEntropy: EntropySource = (length) => {
  const c = globalThis.crypto;
  if (!c?.getRandomValues) {
    throw new Error("no CSPRNG: globalThis.crypto.getRandomValues is missing");
  }
  return c.getRandomValues(new Uint8Array(length));
};

/** Opened is a value opened by StorableBuilder.deconstruct with the version sealed in it. */
export interface Opened {
  /** value is the plaintext value. */
  value: Uint8Array;
  /** sealedVersion is the version the writer sealed with it. */
  sealedVersion: bigint;
}

/**
 * StorableBuilder seals values as vss-client-ng's StorableBuilder does: the encoded
 * PlaintextBlob {value, version} is encrypted with ChaCha20-Poly1305 under the data
 * encryption key and a random 12-byte nonce, with the caller's associated data (the
 * storage key), into an encoded Storable {data, encryption_metadata {cipher_format
 * "ChaCha20Poly1305", nonce, tag}}: the bytes a KeyValue's value holds.
 */
export class StorableBuilder {
  readonly #key: Uint8Array;
  readonly #entropy: EntropySource;

  /** The constructor takes the 32-byte data encryption key and the nonce source. */
  constructor(dataEncryptionKey: Uint8Array | string, entropy: EntropySource = platformEntropy) {
    this.#key = bytesOf("data encryption key", dataEncryptionKey, KEY_LENGTH);
    this.#entropy = entropy;
  }

  /** build seals value and version with associated data aad and returns the encoded Storable. */
  build(value: Uint8Array, version: bigint, aad: Uint8Array): Uint8Array {
    const nonce = this.#entropy(NONCE_LENGTH);
    if (nonce.length !== NONCE_LENGTH) {
      throw new Error(`entropy source: want ${NONCE_LENGTH} bytes, got ${nonce.length}`);
    }
    const blob = toBinary(PlaintextBlobSchema, create(PlaintextBlobSchema, { value, version }));
    const [data, tag] = encryptDetached(this.#key, nonce, blob, aad);
    const storable = create(StorableSchema, {
      data,
      encryptionMetadata: create(EncryptionMetadataSchema, { cipherFormat: CIPHER_FORMAT, nonce, tag }),
    });
    return toBinary(StorableSchema, storable);
  }

  /**
   * deconstruct opens an encoded Storable sealed with associated data aad and returns
   * the value and its sealed version, or throws a VerificationError naming storageKey:
   * FORMAT for anything but a ChaCha20Poly1305 Storable with a 12-byte nonce and a
   * 16-byte tag around a PlaintextBlob, AUTHENTICATION when the tag does not verify.
   */
  deconstruct(stored: Uint8Array, aad: Uint8Array, storageKey: string): Opened {
    const fail = (kind: VerificationErrorKind, detail: string, cause?: unknown) =>
      new VerificationError(kind, storageKey, detail, {}, cause);
    let storable;
    try {
      storable = fromBinary(StorableSchema, stored);
    } catch (err) {
      throw fail(VerificationErrorKind.FORMAT, "the value is not a Storable", err);
    }
    const meta = storable.encryptionMetadata;
    if (!meta) {
      throw fail(VerificationErrorKind.FORMAT, "the Storable has no encryption metadata");
    }
    if (meta.cipherFormat !== CIPHER_FORMAT) {
      throw fail(VerificationErrorKind.FORMAT, `unknown cipher ${JSON.stringify(meta.cipherFormat)}, want ${CIPHER_FORMAT}`);
    }
    if (meta.nonce.length !== NONCE_LENGTH || meta.tag.length !== TAG_LENGTH) {
      throw fail(
        VerificationErrorKind.FORMAT,
        `want a ${NONCE_LENGTH}-byte nonce and a ${TAG_LENGTH}-byte tag, got ${meta.nonce.length} and ${meta.tag.length}`,
      );
    }
    const blob = decryptDetached(this.#key, meta.nonce, storable.data, meta.tag, aad);
    if (!blob) {
      throw fail(
        VerificationErrorKind.AUTHENTICATION,
        "the tag does not verify: the value was altered, sealed with another key, or moved from another storage key",
      );
    }
    try {
      const plain = fromBinary(PlaintextBlobSchema, blob);
      return { value: plain.value, sealedVersion: plain.version };
    } catch (err) {
      throw fail(VerificationErrorKind.FORMAT, "the decrypted data is not a PlaintextBlob", err);
    }
  }
}

/**
 * checkSealedVersion throws a VerificationError (VERSION) unless the version sealed in a
 * value agrees with the version the server reports for it. A writer seals the version it
 * sends: a conditional write of version N (0 creates) stores version N+1, so the server
 * must report sealedVersion + 1; an unconditional write seals -1, which leaves nothing to
 * compare.
 */
export function checkSealedVersion(storageKey: string, sealedVersion: bigint, serverVersion: bigint): void {
  if (sealedVersion !== -1n && sealedVersion + 1n !== serverVersion) {
    throw new VerificationError(
      VerificationErrorKind.VERSION,
      storageKey,
      `the value was written as version ${sealedVersion + 1n} (sealed ${sealedVersion}) but the server reports version ${serverVersion}: an older value served as newer`,
      { sealedVersion, serverVersion },
    );
  }
}

/**
 * openVerified opens the value the server returned for storageKey with serverVersion
 * (an absent value as an empty one), sealed with associated data aad, and checks its
 * sealed version against the server's (checkSealedVersion).
 */
export function openVerified(
  builder: StorableBuilder,
  storageKey: string,
  kv: Pick<KeyValue, "value" | "version"> | undefined,
  aad: Uint8Array,
): Opened {
  const opened = builder.deconstruct(kv?.value ?? new Uint8Array(), aad, storageKey);
  checkSealedVersion(storageKey, opened.sealedVersion, kv?.version ?? 0n);
  return opened;
}
