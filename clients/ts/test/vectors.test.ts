// The shared known answers (compat/rust-client/encryption-vectors.json, computed by the real
// vss-client-ng and LDK Node derivation), byte for byte; then the cross-language fixture
// written and read back through a real vss-server.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  KeyObfuscator,
  LdkStore,
  StorableBuilder,
  checkSealedVersion,
  keysFromVssSeed,
  keysFromWalletSeed,
  vssSeedFromWalletSeed,
  type VssClient,
} from "@govss/vss-client";
import { createNodeVssClient } from "@govss/vss-client/node";
import { readFixture, writeFixture } from "./fixture.js";
import { expectVerificationError } from "./helpers.js";
import { startServer, type TestServer } from "./server.js";
import { hex, loadVectors, toHex, type SealedVector } from "./vectors.js";

const vectors = loadVectors();

/** fixed is an entropy source that returns nonce, once. */
function fixed(nonce: Uint8Array): () => Uint8Array {
  let used = false;
  return () => {
    assert.ok(!used, "a second nonce was drawn");
    used = true;
    return nonce.slice();
  };
}

function checkSealed(v: SealedVector): void {
  const builder = new StorableBuilder(v.data_encryption_key, fixed(hex(v.nonce_hex)));
  assert.equal(toHex(builder.build(hex(v.value_hex), v.version, hex(v.aad_hex))), v.storable_hex, v.name);
  const opened = builder.deconstruct(hex(v.storable_hex), hex(v.aad_hex), v.name);
  assert.equal(toHex(opened.value), v.value_hex, v.name);
  assert.equal(opened.sealedVersion, v.version, v.name);
}

describe("encryption vectors", () => {
  it("are format 1", () => {
    assert.equal(vectors.format, 1);
  });

  it("derive the keys from the wallet seed and from the VSS seed", () => {
    const k = vectors.keys;
    assert.equal(k.bip32_path, "m/877'");
    assert.equal(toHex(vssSeedFromWalletSeed(k.wallet_seed)), k.vss_seed);
    for (const keys of [keysFromWalletSeed(hex(k.wallet_seed)), keysFromVssSeed(k.vss_seed)]) {
      assert.equal(toHex(keys.dataEncryptionKey), k.data_encryption_key);
      assert.equal(toHex(keys.obfuscationMasterKey), k.obfuscation_master_key);
    }
    assert.equal(vectors.fixture.wallet_seed, k.wallet_seed);
  });

  it("obfuscate and deobfuscate keys", () => {
    assert.ok(vectors.obfuscated_keys.length >= 8);
    for (const v of vectors.obfuscated_keys) {
      assert.equal(toHex(new TextEncoder().encode(v.key)), v.key_utf8_hex);
      const obfuscator = new KeyObfuscator(v.obfuscation_master_key);
      assert.equal(obfuscator.obfuscate(v.key), v.obfuscated, JSON.stringify(v.key));
      assert.equal(obfuscator.deobfuscate(v.obfuscated), v.key);
    }
  });

  it("seal and open values with fixed nonces", () => {
    assert.ok(vectors.sealed.length >= 8);
    for (const v of vectors.sealed) {
      checkSealed(v);
    }
  });

  it("refuse each negative Storable with its kind", () => {
    for (const v of vectors.negative_storables) {
      const builder = new StorableBuilder(v.data_encryption_key);
      const open = () => {
        const opened = builder.deconstruct(hex(v.storable_hex), hex(v.aad_hex), v.name);
        checkSealedVersion(v.name, opened.sealedVersion, v.server_version);
        return opened;
      };
      if (v.error === null) {
        open();
      } else {
        expectVerificationError(open, v.error, `${v.name}: ${v.description}`);
      }
    }
  });

  it("refuse each negative obfuscated key with its kind", () => {
    const obfuscator = new KeyObfuscator(vectors.keys.obfuscation_master_key);
    for (const v of vectors.negative_keys) {
      if (v.error === null) {
        obfuscator.deobfuscate(v.obfuscated);
      } else {
        const err = expectVerificationError(() => obfuscator.deobfuscate(v.obfuscated), v.error, `${v.name}: ${v.description}`);
        assert.equal(err.storageKey, v.obfuscated);
      }
    }
  });

  it("apply the version rule", () => {
    for (const v of vectors.version_checks) {
      const check = () => checkSealedVersion("k", v.sealed_version, v.server_version);
      if (v.error === null) {
        check();
      } else {
        expectVerificationError(check, v.error, `${v.sealed_version} at ${v.server_version}`);
      }
    }
  });

  it("lay out LDK Node's store keys in both schema generations", async () => {
    // The layout needs no server: a store opened with a given schema calls none.
    const keys = keysFromWalletSeed(vectors.keys.wallet_seed);
    const noServer = {} as VssClient;
    const v1 = await LdkStore.open(noServer, keys, "s", { schema: "V1" });
    const v0 = await LdkStore.open(noServer, keys, "s", { schema: "V0" });
    for (const v of vectors.ldk_store_keys) {
      const triple = { primaryNamespace: v.primary, secondaryNamespace: v.secondary, key: v.key };
      for (const [store, layout] of [
        [v1, v.v1],
        [v0, v.v0],
      ] as const) {
        const name = `${store.schema} ${JSON.stringify(triple)}`;
        assert.equal(store.storageKey(v.primary, v.secondary, v.key), layout.store_key, name);
        assert.deepEqual(store.parseStorageKey(layout.store_key), triple, name);
        assert.ok(layout.store_key.startsWith(layout.prefix) || (store.schema === "V0" && v.primary === ""), name);
      }
      assert.equal(v.v0.aad_hex, "");
      assert.equal(v.v1.aad_hex, toHex(new TextEncoder().encode(v.v1.store_key)));
    }
  });

  it("seal LDK Node's schema version", async () => {
    const s = vectors.ldk_schema_version;
    const keys = keysFromWalletSeed(vectors.keys.wallet_seed);
    const ldk = await LdkStore.open({} as VssClient, keys, "s", { schema: "V1" });
    assert.equal(ldk.storageKey(s.primary, s.secondary, s.key), s.store_key);
    assert.deepEqual([s.v1_value_hex, s.v0_value_hex, s.v0_detection_prefix], ["0100", "0000", "bdk_wallet#"]);
    assert.equal(s.sealed_v1.value_hex, s.v1_value_hex);
    assert.equal(s.sealed_v1.version, -1n);
    checkSealed(s.sealed_v1);
  });
});

describe("the cross-language fixture through vss-server --auth none", () => {
  let server: TestServer;
  let client: VssClient;
  before(async () => {
    server = await startServer(["--auth", "none"]);
    client = createNodeVssClient(server.baseUrl);
  });
  after(async () => {
    await server?.stop();
  });

  it("reads back what it writes, tampering detected where the fixture says", async () => {
    const prefix = `enc-ts-${randomBytes(4).toString("hex")}`;
    await writeFixture(client, vectors, prefix);
    const report = await readFixture(client, vectors, prefix);
    assert.deepEqual(report.problems, []);
    assert.ok(report.checks > 50, `${report.checks} checks`);
  });

  it("reports a store that does not hold the fixture", async () => {
    const prefix = `enc-ts-${randomBytes(4).toString("hex")}`;
    await writeFixture(client, vectors, prefix);
    // One more lie of the server: the LDK V1 manager's value replaced by the network graph's.
    const ldk = await LdkStore.open(client, keysFromWalletSeed(vectors.fixture.wallet_seed), `${prefix}-ldk-v1`);
    const graph = (await client.getObject({ storeId: ldk.storeId, key: ldk.storageKey("", "", "network_graph") })).value!.value;
    await client.putObjects({
      storeId: ldk.storeId,
      transactionItems: [{ key: ldk.storageKey("", "", "manager"), version: -1n, value: graph }],
    });
    const { problems } = await readFixture(client, vectors, prefix);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0]!, /-ldk-v1: read \["","","manager"\]: VerificationError: verification failed \(AUTHENTICATION\)/);
    assert.ok((await readFixture(client, vectors, "never-written")).problems.length >= 4);
  });
});
