// Helpers the client's tests share.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ConnectError } from "@connectrpc/connect";
import { VerificationError, type VerificationErrorKind } from "@govss/vss-client";

/** newKey returns a fresh user: a random secp256k1 private key in hex. */
export function newKey(): string {
  return randomBytes(32).toString("hex");
}

/** storeId returns a store id no other test uses. */
export function storeId(name: string): string {
  return `${name}-${randomBytes(6).toString("hex")}`;
}

/** rejection runs call, which must fail, and returns its Connect error. */
export async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof ConnectError, `want a ConnectError, got ${String(err)}`);
    return err;
  }
  assert.fail("the call succeeded; want an error");
}

/**
 * expectVerificationError runs call, which must throw a VerificationError of kind, and
 * returns the error.
 */
export function expectVerificationError(call: () => unknown, kind: VerificationErrorKind, what = ""): VerificationError {
  let result: unknown;
  try {
    result = call();
  } catch (err) {
    assert.ok(err instanceof VerificationError, `${what}: want a VerificationError, got ${String(err)}`);
    assert.equal(err.kind, kind, `${what}: ${err.message}`);
    return err;
  }
  assert.fail(`${what}: no error; want a VerificationError (${kind}), got ${String(result)}`);
}

/** verificationFailure awaits call, which must reject with a VerificationError of kind, and returns the error. */
export async function verificationFailure(call: Promise<unknown>, kind: VerificationErrorKind, what = ""): Promise<VerificationError> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof VerificationError, `${what}: want a VerificationError, got ${String(err)}`);
    assert.equal(err.kind, kind, `${what}: ${err.message}`);
    return err;
  }
  assert.fail(`${what}: the call succeeded; want a VerificationError (${kind})`);
}
