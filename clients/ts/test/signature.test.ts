import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hexToBytes } from "@noble/hashes/utils.js";
import { SIGNING_CONSTANT, publicKeyHex, signatureHeader } from "@govss/vss-client";

// The contract's test vector: secret key 32 bytes of 0x2a, signed at UNIX time 1700000000.
const vectorKey = new Uint8Array(32).fill(0x2a);
const vectorTime = new Date(1_700_000_000 * 1000);
const vectorHeader =
  "035be5e9478209674a96e60f1f037f6176540fd001fa1d64694770c56a7709c42c" +
  "facd4f04afbbcd95d4bc143df56507f6407bd2a981ca10f216eb8888f7ceb7117795ae377c33e6304af9c82f07e76408c9e846214fd4126e5f771626852e0d80" +
  "1700000000";

const halfOrder = secp256k1.Point.CURVE().n >> 1n;

describe("signatureHeader", () => {
  it("matches the contract's test vector", () => {
    assert.equal(signatureHeader(vectorKey, vectorTime), vectorHeader);
  });

  it("accepts the key as hex, in either case", () => {
    assert.equal(signatureHeader("2a".repeat(32), vectorTime), vectorHeader);
    assert.equal(signatureHeader("2A".repeat(32), vectorTime), vectorHeader);
  });

  it("uses whole UNIX seconds", () => {
    assert.equal(signatureHeader(vectorKey, new Date(1_700_000_000_999)), vectorHeader);
  });

  it("starts with the public key, the user identity", () => {
    assert.equal(publicKeyHex(vectorKey), vectorHeader.slice(0, 66));
  });

  it("signs SHA-256(constant || public key || time) with low-S signatures", () => {
    assert.equal(SIGNING_CONSTANT.length, 64);
    for (let i = 1; i <= 50; i++) {
      const key = sha256(new Uint8Array([i]));
      const time = 1_700_000_000 + i * 7919;
      const header = signatureHeader(key, new Date(time * 1000));
      assert.equal(header.length, 66 + 128 + String(time).length);
      const publicKey = hexToBytes(header.slice(0, 66));
      const signature = hexToBytes(header.slice(66, 194));
      assert.equal(header.slice(194), String(time));
      const message = new Uint8Array([...new TextEncoder().encode(SIGNING_CONSTANT), ...publicKey, ...new TextEncoder().encode(String(time))]);
      assert.ok(secp256k1.verify(signature, sha256(message), publicKey, { prehash: false, lowS: true }), `signature ${i} verifies`);
      const s = BigInt("0x" + header.slice(130, 194));
      assert.ok(s <= halfOrder, `signature ${i} is low-S`);
    }
  });

  it("rejects keys that are not 32-byte secp256k1 secrets", () => {
    assert.throws(() => signatureHeader("2a".repeat(31)), /64 hexadecimal/);
    assert.throws(() => signatureHeader("zz".repeat(32)), /64 hexadecimal/);
    assert.throws(() => signatureHeader(new Uint8Array(32)), /not a valid secp256k1/);
    assert.throws(() => signatureHeader(new Uint8Array(31).fill(1)), /not a valid secp256k1/);
  });
});
