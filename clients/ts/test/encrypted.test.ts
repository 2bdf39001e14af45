// EncryptedStore and LdkStore against a real vss-server on loopback. The tests play the
// lying server by rewriting what it stores through a plain client of the same user:
// a tampered tag, a value swapped between keys and a rolled-back conditional write must
// each fail verification.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  EncryptedStore,
  ErrorCode,
  FeedErrorReason,
  acquireLease,
  feedErrorReason,
  KeyObfuscator,
  LDK_SCHEMA_VERSION_KEY,
  LdkStore,
  StorableBuilder,
  StorableSchema,
  VerificationErrorKind,
  keysFromWalletSeed,
  listAllKeyVersions,
  vssErrorCode,
  type Keys,
  type VssClient,
} from "@govss/vss-client";
import { createNodeVssClient } from "@govss/vss-client/node";
import { createWebVssClient } from "@govss/vss-client/web";
import { newKey, rejection, storeId, verificationFailure } from "./helpers.js";
import { startServer, type TestServer } from "./server.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** raw reads what the server stores under storageKey. */
async function raw(client: VssClient, store: string, storageKey: string): Promise<{ value: Uint8Array; version: bigint }> {
  const kv = (await client.getObject({ storeId: store, key: storageKey })).value!;
  return { value: kv.value, version: kv.version };
}

/** overwrite makes the server store value under storageKey, unconditionally (version 1). */
async function overwrite(client: VssClient, store: string, storageKey: string, value: Uint8Array): Promise<void> {
  await client.putObjects({ storeId: store, transactionItems: [{ key: storageKey, version: -1n, value }] });
}

/** storedKeys lists the storage keys of store as the server has them. */
async function storedKeys(client: VssClient, store: string): Promise<string[]> {
  return (await listAllKeyVersions(client, store)).keyVersions.map((kv) => kv.key);
}

describe("encrypted stores against vss-server --auth signature", () => {
  let server: TestServer;
  let client: VssClient;
  let keys: Keys;

  before(async () => {
    server = await startServer(["--auth", "signature"]);
    client = createNodeVssClient(server.baseUrl, { auth: { privateKey: newKey() } });
    keys = keysFromWalletSeed(randomBytes(64));
  });
  after(async () => {
    await server?.stop();
  });

  describe("EncryptedStore", () => {
    for (const [transport, make] of [
      ["Connect-Node", (url: string, privateKey: string) => createNodeVssClient(url, { auth: { privateKey } })],
      ["fetch (browser transport)", (url: string, privateKey: string) => createWebVssClient(url, { auth: { privateKey } })],
    ] as const) {
      it(`writes, reads, lists and deletes, the server seeing neither keys nor values (${transport})`, async () => {
        const vss = make(server.baseUrl, newKey());
        const enc = new EncryptedStore(vss, keys);
        const store = storeId("enc");
        await enc.put(store, [
          { key: "greeting", value: encoder.encode("hello, world"), version: 0n },
          { key: "channel/1", value: randomBytes(3 << 20), version: -1n },
        ]);
        let got = await enc.get(store, "greeting");
        assert.equal(decoder.decode(got.value), "hello, world");
        assert.equal(got.version, 1n);
        assert.equal(got.sealedVersion, 0n, "sealed with the version it was sent with");
        assert.equal(got.storageKey, new KeyObfuscator(keys.obfuscationMasterKey).obfuscate("greeting"));

        await enc.put(store, [{ key: "greeting", value: encoder.encode("hello again"), version: 1n }], { globalVersion: 0n });
        got = await enc.get(store, "greeting");
        assert.deepEqual([decoder.decode(got.value), got.version, got.sealedVersion], ["hello again", 2n, 1n]);
        assert.equal((await enc.get(store, "channel/1")).value.length, 3 << 20);

        // What the server holds: obfuscated keys, Storables that do not contain the value.
        const stored = await storedKeys(vss, store);
        assert.deepEqual(stored.sort(), [enc.storageKey("channel/1"), enc.storageKey("greeting")].sort());
        for (const k of stored) {
          assert.doesNotMatch(k, /greeting|channel/);
        }
        const rawGreeting = await raw(vss, store, enc.storageKey("greeting"));
        assert.ok(!Buffer.from(rawGreeting.value).includes("hello again"), "the value is stored in clear");
        assert.equal(fromBinary(StorableSchema, rawGreeting.value).encryptionMetadata?.cipherFormat, "ChaCha20Poly1305");

        const listed = await enc.list(store, { pageSize: 1 });
        assert.deepEqual(
          listed.keyVersions.map((k) => [k.key, k.version]),
          [
            ["channel/1", 1n],
            ["greeting", 2n],
          ],
        );
        assert.equal(listed.globalVersion, 1n);

        // Versions work as PutObjects's: a stale write conflicts, deletes ride along.
        const conflict = await rejection(enc.put(store, [{ key: "greeting", value: encoder.encode("stale"), version: 1n }]));
        assert.equal(conflict.code, Code.Aborted);
        assert.equal(vssErrorCode(conflict), ErrorCode.CONFLICT_EXCEPTION);
        await enc.put(store, [{ key: "new", value: encoder.encode("n"), version: 0n }], { deleteItems: [{ key: "channel/1", version: 1n }] });
        assert.deepEqual((await enc.list(store)).keyVersions.map((k) => k.key), ["new", "greeting"]);
        await enc.delete(store, "greeting", 2n);
        const missing = await rejection(enc.get(store, "greeting"));
        assert.equal(missing.code, Code.NotFound);
        assert.deepEqual((await enc.list(store)).keyVersions.map((k) => k.key), ["new"]);
      });
    }

    it("detects a tampered tag (AUTHENTICATION)", async () => {
      const enc = new EncryptedStore(client, keys);
      const store = storeId("tag");
      await enc.put(store, [{ key: "balance", value: encoder.encode("21 BTC"), version: 0n }]);
      const storageKey = enc.storageKey("balance");
      const storable = fromBinary(StorableSchema, (await raw(client, store, storageKey)).value);
      storable.encryptionMetadata!.tag[5]! ^= 0x40;
      // Unconditional, so the server reports version 1, which agrees with the sealed 0:
      // only the tag gives the tampering away.
      await overwrite(client, store, storageKey, toBinary(StorableSchema, storable));
      const err = await verificationFailure(enc.get(store, "balance"), VerificationErrorKind.AUTHENTICATION);
      assert.equal(err.storageKey, storageKey);

      storable.encryptionMetadata!.tag[5]! ^= 0x40;
      storable.data[0]! ^= 1;
      await overwrite(client, store, storageKey, toBinary(StorableSchema, storable));
      await verificationFailure(enc.get(store, "balance"), VerificationErrorKind.AUTHENTICATION, "altered data");
      await overwrite(client, store, storageKey, encoder.encode("plain text"));
      await verificationFailure(enc.get(store, "balance"), VerificationErrorKind.FORMAT, "not a Storable");
    });

    it("detects a value swapped between keys (AUTHENTICATION)", async () => {
      const enc = new EncryptedStore(client, keys);
      const store = storeId("swap");
      await enc.put(store, [
        { key: "alice", value: encoder.encode("pays 1"), version: -1n },
        { key: "bob", value: encoder.encode("pays 1000"), version: -1n },
      ]);
      const bobs = await raw(client, store, enc.storageKey("bob"));
      await overwrite(client, store, enc.storageKey("alice"), bobs.value);
      const err = await verificationFailure(enc.get(store, "alice"), VerificationErrorKind.AUTHENTICATION);
      assert.equal(err.storageKey, enc.storageKey("alice"));
      assert.equal(decoder.decode((await enc.get(store, "bob")).value), "pays 1000");
    });

    it("detects a rolled-back conditional write (VERSION)", async () => {
      const enc = new EncryptedStore(client, keys);
      const store = storeId("rollback");
      await enc.put(store, [{ key: "state", value: encoder.encode("old"), version: 0n }]);
      const storageKey = enc.storageKey("state");
      const old = await raw(client, store, storageKey);
      await enc.put(store, [{ key: "state", value: encoder.encode("new"), version: 1n }]);
      assert.equal(decoder.decode((await enc.get(store, "state")).value), "new");
      // The server serves the old value (sealed 0) under a newer version.
      await client.putObjects({ storeId: store, transactionItems: [{ key: storageKey, version: 2n, value: old.value }] });
      const err = await verificationFailure(enc.get(store, "state"), VerificationErrorKind.VERSION);
      assert.equal(err.sealedVersion, 0n);
      assert.equal(err.serverVersion, 3n);
    });

    it("writes fenced by a lease through the call options", async () => {
      const enc = new EncryptedStore(client, keys);
      const store = storeId("lease");
      const lease = await acquireLease(client, store, "node", "laptop", 5_000);
      const fence = lease.headers();
      await enc.put(store, [{ key: "monitor", value: encoder.encode("m"), version: -1n }], { headers: fence });
      assert.equal(await lease.release(), true);
      await acquireLease(client, store, "node", "phone", 5_000);
      const stale = await rejection(enc.put(store, [{ key: "monitor", value: encoder.encode("stale"), version: -1n }], { headers: fence }));
      assert.equal(stale.code, Code.FailedPrecondition);
      assert.equal(feedErrorReason(stale), FeedErrorReason.LEASE_NOT_HELD);
      assert.equal(decoder.decode((await enc.get(store, "monitor")).value), "m");
    });

    it("refuses values and keys of other keys (AUTHENTICATION, FORMAT)", async () => {
      const enc = new EncryptedStore(client, keys);
      const other = new EncryptedStore(client, keysFromWalletSeed(randomBytes(64)));
      const store = storeId("other-keys");
      await enc.put(store, [{ key: "mine", value: encoder.encode("secret"), version: 0n }]);
      // The other keys' obfuscation finds another storage key: nothing there.
      assert.equal((await rejection(other.get(store, "mine"))).code, Code.NotFound);
      // Given the storage key, its value does not open.
      await overwrite(client, store, other.storageKey("mine"), (await raw(client, store, enc.storageKey("mine"))).value);
      await verificationFailure(other.get(store, "mine"), VerificationErrorKind.AUTHENTICATION);
      await verificationFailure(other.list(store), VerificationErrorKind.FORMAT, "a key the other keys did not write");
    });
  });

  describe("LdkStore", () => {
    it("opens a new store as V1, records the schema as LDK Node does, and reads back what it writes", async () => {
      const store = storeId("ldk-v1");
      const ldk = await LdkStore.open(client, keys, store);
      assert.equal(ldk.schema, "V1");
      assert.equal(ldk.schemaSource, "new");

      // The schema key: obfuscate("#")#obfuscate("vss_schema_version"), V1 encoded, sealed -1 with the key as AAD.
      const obfuscator = new KeyObfuscator(keys.obfuscationMasterKey);
      const schemaKey = `${obfuscator.obfuscate("#")}#${obfuscator.obfuscate(LDK_SCHEMA_VERSION_KEY)}`;
      assert.equal(ldk.storageKey("", "", LDK_SCHEMA_VERSION_KEY), schemaKey);
      const schemaValue = await raw(client, store, schemaKey);
      const opened = new StorableBuilder(keys.dataEncryptionKey).deconstruct(schemaValue.value, encoder.encode(schemaKey), schemaKey);
      assert.deepEqual([...opened.value], [1, 0]);
      assert.equal(opened.sealedVersion, -1n);

      await ldk.write("", "", "manager", encoder.encode("channel manager"));
      await ldk.write("monitors", "", "abc_1", encoder.encode("monitor 1"));
      await ldk.write("monitors", "updates", "abc_1_7", encoder.encode("update 7"));
      await ldk.write("monitors", "updates", "abc_1_7", encoder.encode("update 7, again"));
      assert.equal(decoder.decode(await ldk.read("monitors", "updates", "abc_1_7")), "update 7, again");
      assert.equal(decoder.decode(await ldk.read("", "", "manager")), "channel manager");
      assert.deepEqual(await ldk.listKeys("monitors", ""), ["abc_1"]);
      assert.deepEqual(await ldk.listKeys("", ""), ["manager"]);

      // The layout: namespaces obfuscated too, nothing in clear.
      const stored = await storedKeys(client, store);
      assert.ok(stored.includes(`${obfuscator.obfuscate("monitors#updates")}#${obfuscator.obfuscate("abc_1_7")}`), stored.join("\n"));
      assert.ok(stored.every((k) => !/monitors|manager|updates/.test(k)));

      assert.deepEqual(
        (await ldk.listNamespaces()).map((ns) => [ns.primaryNamespace, ns.secondaryNamespace, ns.keys.map((k) => k.key)]),
        [
          ["", "", ["manager"]],
          ["monitors", "", ["abc_1"]],
          ["monitors", "updates", ["abc_1_7"]],
        ],
      );

      const again = await LdkStore.open(new EncryptedStore(client, keys), store);
      assert.deepEqual([again.schema, again.schemaSource], ["V1", "stored"]);
      await again.remove("monitors", "updates", "abc_1_7");
      await again.remove("monitors", "updates", "never-written");
      assert.deepEqual(await again.listKeys("monitors", "updates"), []);
      assert.equal((await rejection(again.read("monitors", "updates", "abc_1_7"))).code, Code.NotFound);
    });

    it("detects a value moved between keys in V1 (AUTHENTICATION)", async () => {
      const store = storeId("ldk-v1-swap");
      const ldk = await LdkStore.open(client, keys, store);
      await ldk.write("payments", "", "p1", encoder.encode("1 sat"));
      await ldk.write("payments", "", "p2", encoder.encode("1000 sat"));
      const p2 = await raw(client, store, ldk.storageKey("payments", "", "p2"));
      await overwrite(client, store, ldk.storageKey("payments", "", "p1"), p2.value);
      await verificationFailure(ldk.read("payments", "", "p1"), VerificationErrorKind.AUTHENTICATION);
    });

    it("finds a V0 store by its wallet keys and reads and writes its layout", async () => {
      const store = storeId("ldk-v0");
      // A store as LDK Node wrote it before V1: namespaces in clear, no schema key.
      const writer = await LdkStore.open(client, keys, store, { schema: "V0" });
      assert.equal(writer.schemaSource, "given");
      await writer.write("bdk_wallet", "", "descriptor", encoder.encode("wpkh(...)"));
      await writer.write("", "", "manager", encoder.encode("channel manager"));
      await writer.write("monitors", "updates", "m_1", encoder.encode("update 1"));
      await writer.write("monitors", "updates2", "m_2", encoder.encode("update 2"));
      const obfuscator = new KeyObfuscator(keys.obfuscationMasterKey);
      assert.deepEqual(
        (await storedKeys(client, store)).sort(),
        [
          `bdk_wallet##${obfuscator.obfuscate("descriptor")}`,
          obfuscator.obfuscate("manager"),
          `monitors#updates#${obfuscator.obfuscate("m_1")}`,
          `monitors#updates2#${obfuscator.obfuscate("m_2")}`,
        ].sort(),
      );

      const ldk = await LdkStore.open(client, keys, store);
      assert.deepEqual([ldk.schema, ldk.schemaSource], ["V0", "bdk-wallet"]);
      assert.equal(decoder.decode(await ldk.read("bdk_wallet", "", "descriptor")), "wpkh(...)");
      assert.equal(decoder.decode(await ldk.read("", "", "manager")), "channel manager");
      assert.deepEqual(await ldk.listKeys("monitors", "updates"), ["m_1"], "exactly this secondary namespace");
      assert.deepEqual(await ldk.listKeys("", ""), ["manager"]);
      assert.deepEqual(
        (await ldk.listNamespaces()).map((ns) => [ns.primaryNamespace, ns.secondaryNamespace, ns.keys.map((k) => k.key)]),
        [
          ["", "", ["manager"]],
          ["bdk_wallet", "", ["descriptor"]],
          ["monitors", "updates", ["m_1"]],
          ["monitors", "updates2", ["m_2"]],
        ],
      );
      assert.equal((await storedKeys(client, store)).length, 4, "opening a V0 store writes no schema key");

      // V0 binds no key into the associated data: a swap goes unnoticed (what V1 fixed),
      // but a tampered value does not.
      const m2 = await raw(client, store, ldk.storageKey("monitors", "updates2", "m_2"));
      await overwrite(client, store, ldk.storageKey("monitors", "updates", "m_1"), m2.value);
      assert.equal(decoder.decode(await ldk.read("monitors", "updates", "m_1")), "update 2");
      const storable = fromBinary(StorableSchema, m2.value);
      storable.encryptionMetadata!.tag[0]! ^= 1;
      await overwrite(client, store, ldk.storageKey("monitors", "updates", "m_1"), toBinary(StorableSchema, storable));
      await verificationFailure(ldk.read("monitors", "updates", "m_1"), VerificationErrorKind.AUTHENTICATION);
    });

    it("opens read-only without writing, and checks namespaces as LDK Node does", async () => {
      const store = storeId("ldk-ro");
      const ldk = await LdkStore.open(client, keys, store, { readOnly: true });
      assert.deepEqual([ldk.schema, ldk.schemaSource], ["V1", "new"]);
      assert.deepEqual(await storedKeys(client, store), []);
      await assert.rejects(ldk.write("", "sub", "k", new Uint8Array()), /secondary namespace needs a primary/);
      await assert.rejects(ldk.write("a#b", "", "k", new Uint8Array()), /A-Z/);
      await assert.rejects(ldk.read("ns", "", ""), /may not be empty/);
      await assert.rejects(ldk.listKeys("x".repeat(121), ""), /at most 120/);
    });

    it("refuses a schema key it cannot open", async () => {
      const store = storeId("ldk-bad-schema");
      const ldk = await LdkStore.open(client, keys, store);
      const schemaKey = ldk.storageKey("", "", LDK_SCHEMA_VERSION_KEY);
      const builder = new StorableBuilder(keys.dataEncryptionKey);
      await overwrite(client, store, schemaKey, builder.build(Uint8Array.of(7, 0), -1n, encoder.encode(schemaKey)));
      await verificationFailure(LdkStore.open(client, keys, store), VerificationErrorKind.FORMAT, "unknown schema");
      await overwrite(client, store, schemaKey, builder.build(Uint8Array.of(1, 0), -1n, new Uint8Array()));
      await verificationFailure(LdkStore.open(client, keys, store), VerificationErrorKind.AUTHENTICATION, "sealed without the key");
      await overwrite(client, store, schemaKey, create(StorableSchema, {}).data);
      await verificationFailure(LdkStore.open(client, keys, store), VerificationErrorKind.FORMAT, "empty");
    });
  });
});
