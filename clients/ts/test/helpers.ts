// Helpers the client's tests share.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ConnectError } from "@connectrpc/connect";

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
