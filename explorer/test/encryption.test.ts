import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  EncryptedStore,
  LdkStore,
  VerificationError,
  VerificationErrorKind,
  keysFromWalletSeed,
  type VssClient,
} from "@govss/vss-client";
import { failureText, keysFromInput, showKey, verifiedText, type View } from "../src/encryption.js";

const seed = "00".repeat(63) + "01";
const noServer = {} as VssClient;

describe("the page's encryption keys", () => {
  it("come from a wallet seed or the two derived keys, or not at all", () => {
    assert.equal(keysFromInput({ mode: "off" }), undefined);
    const fromSeed = keysFromInput({ mode: "seed", walletSeed: ` ${seed}\n` })!;
    assert.deepEqual(fromSeed, keysFromWalletSeed(seed));
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    const fromKeys = keysFromInput({
      mode: "keys",
      dataEncryptionKey: hex(fromSeed.dataEncryptionKey).toUpperCase(),
      obfuscationMasterKey: hex(fromSeed.obfuscationMasterKey),
    })!;
    assert.deepEqual(fromKeys, fromSeed);
  });

  it("say what is wrong with what was typed", () => {
    assert.throws(() => keysFromInput({ mode: "seed", walletSeed: "abc" }), /wallet seed is not 32 to 128 hex characters/);
    assert.throws(() => keysFromInput({ mode: "seed", walletSeed: "00".repeat(15) }), /16 to 64 bytes/);
    assert.throws(
      () => keysFromInput({ mode: "keys", dataEncryptionKey: "00".repeat(32), obfuscationMasterKey: "0" }),
      /the obfuscation master key is not 64 hex characters/,
    );
  });
});

describe("what the page says", () => {
  it("reads keys in clear in both layouts, and marks those it cannot", async () => {
    const keys = keysFromWalletSeed(seed);
    const store = new EncryptedStore(noServer, keys);
    const plain: View = { kind: "plain", store, storeId: "s" };
    assert.deepEqual(showKey(plain, store.storageKey("greeting")), { storageKey: store.storageKey("greeting"), key: "greeting" });
    assert.match(showKey(plain, "written-in-clear").failure ?? "", /^Verification failed \(FORMAT\): cannot deobfuscate the key/);
    const ldk: View = { kind: "ldk", ldk: await LdkStore.open(store, "s", { schema: "V1" }) };
    const shown = showKey(ldk, ldk.ldk.storageKey("monitors", "updates", "m_1"));
    assert.deepEqual([shown.namespace, shown.key], ["monitors/updates", "m_1"]);
  });

  it("explains each kind of verification failure, and what a value's verification covered", async () => {
    assert.match(failureText(new VerificationError(VerificationErrorKind.AUTHENTICATION, "k", "x")), /^Verification failed \(AUTHENTICATION\)/);
    assert.equal(
      failureText(new VerificationError(VerificationErrorKind.VERSION, "k", "x", { sealedVersion: 0n, serverVersion: 3n })),
      "Verification failed (VERSION): the value was written as version 1, but the server serves it as version 3: an older value served as newer (a rollback). Nothing of it is shown.",
    );
    const keys = keysFromWalletSeed(seed);
    const v0: View = { kind: "ldk", ldk: await LdkStore.open(noServer, keys, "s", { schema: "V0" }) };
    assert.match(verifiedText(v0, -1n, 1n), /V0 layout binds no key.*no version to compare/);
    const plain: View = { kind: "plain", store: new EncryptedStore(noServer, keys), storeId: "s" };
    assert.match(verifiedText(plain, 4n, 5n), /Sealed version 4 agrees with the server's version 5\.$/);
  });
});
