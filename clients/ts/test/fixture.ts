// The cross-language fixture of compat/rust-client/encryption-vectors.json: what every
// language's writer writes into a VSS store and every reader must find there
// (ENCRYPTION-VECTORS.md, "fixture"). writeFixture and readFixture are the TypeScript side,
// run by compat/encryption/ts.sh and by this package's tests.
import { isDeepStrictEqual } from "node:util";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  EncryptedStore,
  LdkStore,
  StorableSchema,
  VerificationError,
  keysFromWalletSeed,
  listAllKeyVersions,
  type Keys,
  type VssClient,
} from "@govss/vss-client";
import { hex, toHex, type FixtureRead, type FixtureStore, type Vectors } from "./vectors.js";

/** utf8Order sorts strings by their UTF-8 bytes, as Rust sorts the fixture's strings. */
function utf8Order(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function show(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

/**
 * writeFixture writes every store of the fixture under prefix: each store's ops in order,
 * through EncryptedStore, LdkStore, or the plain client for the raw ops (the server's lies).
 */
export async function writeFixture(client: VssClient, vectors: Vectors, prefix: string): Promise<void> {
  const keys = keysFromWalletSeed(vectors.fixture.wallet_seed);
  for (const store of vectors.fixture.stores) {
    const storeId = prefix + store.store_id_suffix;
    const enc = new EncryptedStore(client, keys);
    let ldk: LdkStore | undefined;
    const saved = new Map<string, Uint8Array>();
    const rawGet = async (key: string) => (await client.getObject({ storeId, key })).value?.value ?? new Uint8Array();
    const rawPut = (key: string, version: bigint, value: Uint8Array) =>
      client.putObjects({ storeId, transactionItems: [{ key, version, value }] });
    const ldkStore = () => {
      if (!ldk) {
        throw new Error(`${storeId}: an ldk op before ldk_open`);
      }
      return ldk;
    };
    for (const op of store.ops) {
      switch (op.op) {
        case "put":
          await enc.put(
            storeId,
            op.items.map((i) => ({ key: i.key, value: hex(i.value_hex), version: i.version })),
          );
          break;
        case "delete":
          await enc.delete(storeId, op.key, op.version);
          break;
        case "ldk_open":
          if (op.schema === "V0") {
            ldk = await LdkStore.open(client, keys, storeId, { schema: "V0" });
          } else {
            ldk = await LdkStore.open(client, keys, storeId);
            if (ldk.schema !== "V1" || ldk.schemaSource !== "new") {
              throw new Error(`${storeId}: opening the empty store found ${ldk.schema} (${ldk.schemaSource}), want a new V1`);
            }
          }
          break;
        case "ldk_write":
          await ldkStore().write(op.primary, op.secondary, op.key, hex(op.value_hex));
          break;
        case "ldk_remove":
          await ldkStore().remove(op.primary, op.secondary, op.key);
          break;
        case "raw_copy":
          await rawPut(op.to, op.version, await rawGet(op.from));
          break;
        case "raw_flip": {
          const storable = fromBinary(StorableSchema, await rawGet(op.key));
          storable.data[0]! ^= 0x01;
          await rawPut(op.key, op.version, toBinary(StorableSchema, storable));
          break;
        }
        case "raw_save":
          saved.set(op.key, await rawGet(op.key));
          break;
        case "raw_restore": {
          const bytes = saved.get(op.key);
          if (!bytes) {
            throw new Error(`${storeId}: raw_restore of ${op.key} before raw_save`);
          }
          await rawPut(op.key, op.version, bytes);
          break;
        }
        default:
          throw new Error(`${storeId}: unknown op ${show(op)}`);
      }
    }
  }
}

/** FixtureReport is what readFixture found: the checks made, and those that failed. */
export interface FixtureReport {
  checks: number;
  problems: string[];
}

/**
 * readFixture checks every store that writeFixture (of any language) wrote under prefix
 * against the fixture's expect, and reports how many checks it made and what did not
 * match: no problems when all is well.
 */
export async function readFixture(client: VssClient, vectors: Vectors, prefix: string): Promise<FixtureReport> {
  const keys = keysFromWalletSeed(vectors.fixture.wallet_seed);
  const report: FixtureReport = { checks: 0, problems: [] };
  for (const store of vectors.fixture.stores) {
    const storeId = prefix + store.store_id_suffix;
    try {
      await readStore(client, keys, storeId, store, report);
    } catch (err) {
      report.problems.push(`${storeId}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
  }
  return report;
}

async function readStore(client: VssClient, keys: Keys, storeId: string, store: FixtureStore, report: FixtureReport): Promise<void> {
  const fail = (problem: string) => report.problems.push(`${storeId}: ${problem}`);
  const want = store.expect;
  const same = (what: string, got: unknown, expected: unknown) => {
    report.checks++;
    if (!isDeepStrictEqual(got, expected)) {
      fail(`${what}: got ${show(got)}, want ${show(expected)}`);
    }
  };

  const raw = (await listAllKeyVersions(client, storeId)).keyVersions
    .map((kv) => ({ store_key: kv.key, version: kv.version }))
    .sort((a, b) => utf8Order(a.store_key, b.store_key));
  same("the stored keys (ListKeyVersions, no encryption)", raw, want.raw_keys);

  let read: (r: FixtureRead) => Promise<{ value: Uint8Array; version: bigint; sealedVersion: bigint; storageKey: string }>;
  let storageKeyOf: (r: FixtureRead) => string;
  if (store.layout === "vss-client-ng") {
    const enc = new EncryptedStore(client, keys);
    const listed = (await enc.list(storeId)).keyVersions
      .map((k) => ({ key: k.key, version: k.version }))
      .sort((a, b) => utf8Order(a.key, b.key));
    same("EncryptedStore.list", listed, want.list);
    read = (r) => enc.get(storeId, r.key);
    storageKeyOf = (r) => enc.storageKey(r.key);
  } else {
    const ldk = await LdkStore.open(client, keys, storeId, { readOnly: true });
    same("the schema LDK Node's detection finds", ldk.schema, want.schema);
    same("how it was found", ldk.schemaSource, want.schema === "V1" ? "stored" : "bdk-wallet");
    const namespaces = (await ldk.listNamespaces()).map((ns) => ({
      primary: ns.primaryNamespace,
      secondary: ns.secondaryNamespace,
      keys: ns.keys.map((k) => k.key).sort(utf8Order),
    }));
    same("LdkStore.listNamespaces", namespaces, want.namespaces);
    for (const ns of want.namespaces ?? []) {
      same(`LdkStore.listKeys(${show(ns.primary)}, ${show(ns.secondary)})`, (await ldk.listKeys(ns.primary, ns.secondary)).sort(utf8Order), ns.keys);
    }
    read = (r) => ldk.get(r.primary ?? "", r.secondary ?? "", r.key);
    storageKeyOf = (r) => ldk.storageKey(r.primary ?? "", r.secondary ?? "", r.key);
  }

  for (const r of want.reads) {
    const name = `read ${show([r.primary, r.secondary, r.key].filter((x) => x !== undefined))}`;
    same(`${name}: the storage key`, storageKeyOf(r), r.store_key);
    try {
      report.checks++;
      const got = await read(r);
      if (r.error !== null) {
        fail(`${name}: read ${got.value.length} bytes at version ${got.version}; want a VerificationError (${r.error})`);
        continue;
      }
      same(`${name}: value`, toHex(got.value), r.value_hex);
      same(`${name}: server version`, got.version, r.version);
      same(`${name}: sealed version`, got.sealedVersion, r.sealed_version);
    } catch (err) {
      if (r.error === null) {
        fail(`${name}: ${String(err)}; want ${r.value_hex?.slice(0, 32)}… at version ${r.version}`);
      } else if (!(err instanceof VerificationError) || err.kind !== r.error) {
        fail(`${name}: ${String(err)}; want a VerificationError (${r.error})`);
      } else {
        same(`${name}: the error's storage key`, err.storageKey, r.store_key);
      }
    }
  }
}
