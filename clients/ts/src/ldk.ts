// LDK Node's layout of a VSS store, both schema generations, as its VSS store names keys
// (src/io/vss_store.rs of LDK Node at commit 77f9564e: VssSchemaVersion,
// build_obfuscated_key, extract_namespaces, determine_and_write_schema_version).
import { Code, ConnectError, type CallOptions } from "@connectrpc/connect";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { listKeyVersionPages, type VssClient } from "./client.js";
import { EncryptedStore, type EncryptedStoreOptions } from "./encrypted-store.js";
import {
  KeyObfuscator,
  StorableBuilder,
  VerificationError,
  VerificationErrorKind,
  openVerified,
  type Keys,
} from "./encryption.js";

/**
 * LdkSchemaVersion names the generation of LDK Node's layout a store uses.
 * - "V0" (the first): keys are obfuscate(key) under empty namespaces, else
 *   primary#secondary#obfuscate(key) with the namespaces in clear, and values are sealed
 *   with empty associated data: a reader can tell values are genuine, but not that a value
 *   is stored under the key it was written for (the server may swap values between keys
 *   unnoticed), and anyone reading the store sees the namespaces.
 * - "V1": keys are obfuscate(primary#secondary)#obfuscate(key) and the associated data
 *   is that whole storage key, so a value moved to another key fails verification.
 *
 * In both, LDK Node writes unconditionally (version -1, sealed -1): no sealed version
 * lets a reader detect a value rolled back to an older one.
 */
export type LdkSchemaVersion = "V0" | "V1";

/** LDK_SCHEMA_VERSION_KEY is the key, under empty namespaces, that records a V1 store's schema. */
export const LDK_SCHEMA_VERSION_KEY = "vss_schema_version";

/** LDK_V0_WALLET_PREFIX marks a V0 store: its BDK wallet keys, namespace in clear. */
export const LDK_V0_WALLET_PREFIX = "bdk_wallet#";

const namespaceAlphabet = /^[A-Za-z0-9_-]*$/;
const namespaceMaxLength = 120;

/**
 * LdkSchemaSource says how LdkStore.open found the schema: "stored" (the
 * vss_schema_version key), "bdk-wallet" (no such key, but V0 BDK wallet keys), "new"
 * (neither: V1, and the version was written unless the store was opened read-only), or
 * "given" (options.schema).
 */
export type LdkSchemaSource = "stored" | "bdk-wallet" | "new" | "given";

/** LdkOpenOptions configure LdkStore.open. */
export interface LdkOpenOptions extends EncryptedStoreOptions {
  /**
   * readOnly detects the schema without writing it: a store with neither a schema key
   * nor V0 wallet keys is taken as V1, as LDK Node takes it, but nothing is written.
   */
  readOnly?: boolean;
  /** schema skips detection and uses this generation. */
  schema?: LdkSchemaVersion;
  /** signal cancels the detection's calls. */
  signal?: AbortSignal;
}

/** LdkKey is a key of an LDK Node store, in clear, with the server's version. */
export interface LdkKey {
  primaryNamespace: string;
  secondaryNamespace: string;
  key: string;
  /** version is the version the server reports (LDK Node's unconditional writes leave 1). */
  version: bigint;
  /** storageKey is the key as the server stores it. */
  storageKey: string;
}

/** LdkValue is a verified value of an LDK Node store, as LdkStore.get returns it. */
export interface LdkValue {
  value: Uint8Array;
  /** version is the version the server reports. */
  version: bigint;
  /** sealedVersion is the version sealed with the value (-1 for LDK Node's writes). */
  sealedVersion: bigint;
  /** storageKey is the key as the server stores it. */
  storageKey: string;
}

/** LdkNamespace is one namespace pair of an LDK Node store and its keys. */
export interface LdkNamespace {
  primaryNamespace: string;
  secondaryNamespace: string;
  keys: LdkKey[];
}

/**
 * checkNamespaces throws unless the namespaces (and key, if given) are valid as LDK
 * Node's KVStore requires: at most 120 characters of [A-Za-z0-9_-], a non-empty key, and
 * no secondary namespace without a primary one.
 */
function checkNamespaces(primaryNamespace: string, secondaryNamespace: string, key?: string): void {
  for (const [what, s] of [
    ["primary namespace", primaryNamespace],
    ["secondary namespace", secondaryNamespace],
    ["key", key ?? ""],
  ] as const) {
    if (s.length > namespaceMaxLength || !namespaceAlphabet.test(s)) {
      throw new Error(`LDK store: the ${what} ${JSON.stringify(s)} is not at most 120 characters of A-Z, a-z, 0-9, _ and -`);
    }
  }
  if (key !== undefined && key === "") {
    throw new Error("LDK store: the key may not be empty");
  }
  if (primaryNamespace === "" && secondaryNamespace !== "") {
    throw new Error("LDK store: a secondary namespace needs a primary namespace");
  }
}

/** encodeSchemaVersion encodes a schema version as LDK's impl_writeable_tlv_based_enum does: id, then an empty TLV stream. */
function encodeSchemaVersion(schema: LdkSchemaVersion): Uint8Array {
  return Uint8Array.of(schema === "V1" ? 1 : 0, 0);
}

/**
 * decodeSchemaVersion reads what encodeSchemaVersion writes: the variant id, then a
 * length-prefixed (BigSize) TLV stream, which LDK Node's variants leave empty.
 */
function decodeSchemaVersion(bytes: Uint8Array, storageKey: string): LdkSchemaVersion {
  const fail = () =>
    new VerificationError(VerificationErrorKind.FORMAT, storageKey, `the schema version ${Array.from(bytes).join(",")} is not LDK Node's V0 or V1`);
  const id = bytes[0];
  const length = bytes[1];
  // A length below 0xfd is one BigSize byte; LDK Node's variants carry no fields.
  if ((id !== 0 && id !== 1) || length === undefined || length >= 0xfd || bytes.length !== 2 + length) {
    throw fail();
  }
  return id === 1 ? "V1" : "V0";
}

/**
 * LdkStore reads and writes a VSS store laid out as LDK Node's VSS store lays it out,
 * with the Keys LDK Node derives from the wallet's seed (keysFromWalletSeed): keys in a
 * primary and a secondary namespace, both schema generations (LdkSchemaVersion), values
 * sealed by StorableBuilder. open finds the schema as LDK Node does. Every read is
 * verified (VerificationError otherwise); see LdkSchemaVersion for what each generation
 * lets a reader verify.
 */
export class LdkStore {
  /** client is the VssClient every call goes through. */
  readonly client: VssClient;
  /** storeId is the store LDK Node writes to. */
  readonly storeId: string;
  /** schema is the store's layout generation. */
  readonly schema: LdkSchemaVersion;
  /** schemaSource says how open found schema. */
  readonly schemaSource: LdkSchemaSource;
  readonly #obfuscator: KeyObfuscator;
  readonly #builder: StorableBuilder;

  private constructor(
    store: EncryptedStore,
    storeId: string,
    schema: LdkSchemaVersion,
    schemaSource: LdkSchemaSource,
  ) {
    this.client = store.client;
    this.storeId = storeId;
    this.schema = schema;
    this.schemaSource = schemaSource;
    this.#obfuscator = store.obfuscator;
    this.#builder = store.builder;
  }

  /**
   * open returns the LdkStore of storeId, read and written through client with keys (or
   * through an EncryptedStore, which holds both), after finding its schema as LDK Node
   * does: the vss_schema_version key under empty namespaces if present; else V0 if keys
   * exist under "bdk_wallet#"; else V1, which it then records (unless options.readOnly),
   * written unconditionally as LDK Node writes it.
   */
  static async open(store: EncryptedStore, storeId: string, options?: LdkOpenOptions): Promise<LdkStore>;
  static async open(client: VssClient, keys: Keys, storeId: string, options?: LdkOpenOptions): Promise<LdkStore>;
  static async open(
    first: EncryptedStore | VssClient,
    second: Keys | string,
    third?: string | LdkOpenOptions,
    fourth?: LdkOpenOptions,
  ): Promise<LdkStore> {
    let store: EncryptedStore;
    let storeId: string;
    let options: LdkOpenOptions;
    if (first instanceof EncryptedStore) {
      store = first;
      storeId = second as string;
      options = (third as LdkOpenOptions | undefined) ?? {};
    } else {
      options = fourth ?? {};
      store = new EncryptedStore(first, second as Keys, options);
      storeId = third as string;
    }
    if (options.schema !== undefined) {
      return new LdkStore(store, storeId, options.schema, "given");
    }
    const call = { signal: options.signal };
    const schemaStore = new LdkStore(store, storeId, "V1", "stored");
    const schemaKey = schemaStore.storageKey("", "", LDK_SCHEMA_VERSION_KEY);
    try {
      const res = await store.client.getObject({ storeId, key: schemaKey }, call);
      const opened = openVerified(store.builder, schemaKey, res.value, utf8ToBytes(schemaKey));
      return new LdkStore(store, storeId, decodeSchemaVersion(opened.value, schemaKey), "stored");
    } catch (err) {
      if (!(err instanceof ConnectError && err.code === Code.NotFound)) {
        throw err;
      }
    }
    const wallet = await store.client.listKeyVersions({ storeId, keyPrefix: LDK_V0_WALLET_PREFIX }, call);
    if (wallet.keyVersions.length > 0) {
      return new LdkStore(store, storeId, "V0", "bdk-wallet");
    }
    if (!options.readOnly) {
      const value = store.builder.build(encodeSchemaVersion("V1"), -1n, utf8ToBytes(schemaKey));
      await store.client.putObjects({ storeId, transactionItems: [{ key: schemaKey, version: -1n, value }] }, call);
    }
    return new LdkStore(store, storeId, "V1", "new");
  }

  /** #prefix is what precedes the obfuscated key in the storage keys of a namespace pair. */
  #prefix(primaryNamespace: string, secondaryNamespace: string): string {
    if (this.schema === "V1") {
      return this.#obfuscator.obfuscate(`${primaryNamespace}#${secondaryNamespace}`) + "#";
    }
    return primaryNamespace === "" ? "" : `${primaryNamespace}#${secondaryNamespace}#`;
  }

  /** storageKey returns the key as LDK Node stores it (build_obfuscated_key). */
  storageKey(primaryNamespace: string, secondaryNamespace: string, key: string): string {
    return this.#prefix(primaryNamespace, secondaryNamespace) + this.#obfuscator.obfuscate(key);
  }

  /** #aad is the associated data of a storage key: the key itself in V1, nothing in V0. */
  #aad(storageKey: string): Uint8Array {
    return this.schema === "V1" ? utf8ToBytes(storageKey) : new Uint8Array();
  }

  /**
   * parseStorageKey returns the namespaces and key a storage key names, or throws a
   * VerificationError (FORMAT) when it is not a key of this layout.
   */
  parseStorageKey(storageKey: string): { primaryNamespace: string; secondaryNamespace: string; key: string } {
    const fail = (detail: string) => new VerificationError(VerificationErrorKind.FORMAT, storageKey, `not an LDK ${this.schema} storage key: ${detail}`);
    if (this.schema === "V1") {
      const hash = storageKey.indexOf("#");
      if (hash < 0) {
        throw fail("no # between namespace and key");
      }
      const namespace = this.#obfuscator.deobfuscate(storageKey.slice(0, hash));
      const split = namespace.indexOf("#");
      if (split < 0) {
        throw fail("the namespace has no # between primary and secondary");
      }
      return {
        primaryNamespace: namespace.slice(0, split),
        secondaryNamespace: namespace.slice(split + 1),
        key: this.#obfuscator.deobfuscate(storageKey.slice(hash + 1)),
      };
    }
    const parts = storageKey.split("#");
    if (parts.length === 1) {
      return { primaryNamespace: "", secondaryNamespace: "", key: this.#obfuscator.deobfuscate(storageKey) };
    }
    if (parts.length !== 3) {
      throw fail("want primary#secondary#key or a key alone");
    }
    return { primaryNamespace: parts[0]!, secondaryNamespace: parts[1]!, key: this.#obfuscator.deobfuscate(parts[2]!) };
  }

  /**
   * read returns the value of key in the namespaces, verified. A missing key fails as
   * VssClient.getObject does (ConnectError, Code.NotFound).
   */
  async read(primaryNamespace: string, secondaryNamespace: string, key: string, options?: CallOptions): Promise<Uint8Array> {
    return (await this.get(primaryNamespace, secondaryNamespace, key, options)).value;
  }

  /** get is read with the versions: the server's and the one sealed in the value. */
  async get(primaryNamespace: string, secondaryNamespace: string, key: string, options?: CallOptions): Promise<LdkValue> {
    checkNamespaces(primaryNamespace, secondaryNamespace, key);
    const storageKey = this.storageKey(primaryNamespace, secondaryNamespace, key);
    const res = await this.client.getObject({ storeId: this.storeId, key: storageKey }, options);
    const opened = openVerified(this.#builder, storageKey, res.value, this.#aad(storageKey));
    return { value: opened.value, version: res.value?.version ?? 0n, sealedVersion: opened.sealedVersion, storageKey };
  }

  /** write stores value under key in the namespaces, unconditionally (version -1) as LDK Node does. */
  async write(primaryNamespace: string, secondaryNamespace: string, key: string, value: Uint8Array, options?: CallOptions): Promise<void> {
    checkNamespaces(primaryNamespace, secondaryNamespace, key);
    const storageKey = this.storageKey(primaryNamespace, secondaryNamespace, key);
    const sealed = this.#builder.build(value, -1n, this.#aad(storageKey));
    await this.client.putObjects({ storeId: this.storeId, transactionItems: [{ key: storageKey, version: -1n, value: sealed }] }, options);
  }

  /** remove deletes key in the namespaces, unconditionally as LDK Node does; a missing key is no error. */
  async remove(primaryNamespace: string, secondaryNamespace: string, key: string, options?: CallOptions): Promise<void> {
    checkNamespaces(primaryNamespace, secondaryNamespace, key);
    const storageKey = this.storageKey(primaryNamespace, secondaryNamespace, key);
    await this.client.deleteObject({ storeId: this.storeId, keyValue: { key: storageKey, version: -1n } }, options);
  }

  /**
   * listKeys returns the keys (in clear) of exactly these namespaces, newest created
   * first. Unlike LDK Node's own listing, which matches a prefix, it never returns keys
   * of another secondary namespace that starts the same way (V0), and it omits the
   * vss_schema_version key.
   */
  async listKeys(primaryNamespace: string, secondaryNamespace: string, options: { signal?: AbortSignal } = {}): Promise<string[]> {
    checkNamespaces(primaryNamespace, secondaryNamespace);
    const prefix = this.#prefix(primaryNamespace, secondaryNamespace);
    const keys: string[] = [];
    for await (const page of listKeyVersionPages(this.client, this.storeId, { keyPrefix: prefix === "" ? undefined : prefix, signal: options.signal })) {
      for (const kv of page.keyVersions) {
        const rest = kv.key.slice(prefix.length);
        if (rest.includes("#")) {
          continue; // V0: a key of another namespace pair (prefix "") or of a longer secondary namespace
        }
        const key = this.#obfuscator.deobfuscate(rest);
        if (!(primaryNamespace === "" && key === LDK_SCHEMA_VERSION_KEY)) {
          keys.push(key);
        }
      }
    }
    return keys;
  }

  /**
   * listAll returns every key of the store with its namespaces in clear (LDK Node's
   * list_all_keys), newest created first, without the vss_schema_version key. A storage
   * key that is not of this layout, or does not deobfuscate, fails with a
   * VerificationError (FORMAT).
   */
  async listAll(options: { signal?: AbortSignal } = {}): Promise<LdkKey[]> {
    const all: LdkKey[] = [];
    for await (const page of listKeyVersionPages(this.client, this.storeId, { signal: options.signal })) {
      for (const kv of page.keyVersions) {
        const parsed = this.parseStorageKey(kv.key);
        if (parsed.primaryNamespace === "" && parsed.secondaryNamespace === "" && parsed.key === LDK_SCHEMA_VERSION_KEY) {
          continue;
        }
        all.push({ ...parsed, version: kv.version, storageKey: kv.key });
      }
    }
    return all;
  }

  /**
   * listNamespaces returns the store's namespace pairs, each with its keys in clear
   * (listAll grouped), sorted by primary then secondary namespace.
   */
  async listNamespaces(options: { signal?: AbortSignal } = {}): Promise<LdkNamespace[]> {
    const groups = new Map<string, LdkNamespace>();
    for (const k of await this.listAll(options)) {
      const id = `${k.primaryNamespace}#${k.secondaryNamespace}`;
      let group = groups.get(id);
      if (!group) {
        group = { primaryNamespace: k.primaryNamespace, secondaryNamespace: k.secondaryNamespace, keys: [] };
        groups.set(id, group);
      }
      group.keys.push(k);
    }
    return [...groups.values()].sort(
      (a, b) => cmp(a.primaryNamespace, b.primaryNamespace) || cmp(a.secondaryNamespace, b.secondaryNamespace),
    );
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
