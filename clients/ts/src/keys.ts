import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hexToBytes } from "@noble/hashes/utils.js";

/**
 * PrivateKey is a 32-byte secp256k1 secret key, as bytes or as 64 hexadecimal characters.
 */
export type PrivateKey = Uint8Array | string;

/**
 * secretKeyBytes checks a private key and returns its 32 bytes.
 */
export function secretKeyBytes(key: PrivateKey): Uint8Array {
  let bytes: Uint8Array;
  if (typeof key === "string") {
    const hex = key.trim();
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
      throw new Error("private key: want 64 hexadecimal characters (32 bytes)");
    }
    bytes = hexToBytes(hex);
  } else {
    bytes = key;
  }
  if (bytes.length !== 32 || !secp256k1.utils.isValidSecretKey(bytes)) {
    throw new Error("private key: not a valid secp256k1 secret key (32 bytes, between 1 and the curve order)");
  }
  return bytes;
}
