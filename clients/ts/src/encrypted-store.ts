import type { CallOptions } from "@connectrpc/connect";
import { utf8ToBytes } from "@noble/hashes/utils.js";
import { listKeyVersionPages, type VssClient } from "./client.js";
import {
  KeyObfuscator,
  StorableBuilder,
  openVerified,
  platformEntropy,
  type EntropySource,
  type Keys,
} from "./encryption.js";

/** EncryptedItem is a value to write: its key in clear, value and the version to send. */
export interface EncryptedItem {
  /** key is the key in clear; the server sees only its obfuscated form. */
  key: string;
  /** value is the plaintext; the server sees only the sealed Storable. */
  value: Uint8Array;
  /**
   * version is the version to write, as PutObjects takes it: 0 creates the key, N
   * updates version N, -1 writes unconditionally. It is sealed with the value.
   */
  version: bigint;
}

/** DeleteItem is a key to delete in a put: its key in clear and version (-1: any). */
export interface DeleteItem {
  key: string;
  version: bigint;
}

/** PutOptions add deletes and the store's global version to EncryptedStore.put. */
export interface PutOptions extends CallOptions {
  /** deleteItems are deleted in the same transaction. */
  deleteItems?: DeleteItem[];
  /** globalVersion, when given, is checked and bumped like a key version. */
  globalVersion?: bigint;
}

/** EncryptedValue is a verified value, as EncryptedStore.get returns it. */
export interface EncryptedValue {
  /** key is the key in clear. */
  key: string;
  /** storageKey is the key as the server stores it (obfuscated). */
  storageKey: string;
  /** value is the decrypted value. */
  value: Uint8Array;
  /** version is the version the server reports. */
  version: bigint;
  /** sealedVersion is the version the writer sealed with the value (-1: unconditional). */
  sealedVersion: bigint;
}

/** EncryptedKeyVersion is a key of an EncryptedStore listing. */
export interface EncryptedKeyVersion {
  /** key is the key in clear. */
  key: string;
  /** storageKey is the key as the server stores it. */
  storageKey: string;
  /** version is the version the server reports. */
  version: bigint;
}

/** EncryptedStoreOptions configure an EncryptedStore. */
export interface EncryptedStoreOptions {
  /** entropy draws nonces; the default is the platform's CSPRNG (keep it). */
  entropy?: EntropySource;
}

/**
 * EncryptedStore reads and writes a VSS store through a VssClient (with its auth,
 * retries, device id; lease headers go in the call options) so that the server sees
 * neither keys nor values, as vss-client-ng applications store them: each key is
 * obfuscated with KeyObfuscator, each value sealed with StorableBuilder using the
 * storage key (the obfuscated key, exactly as stored) as associated data and the version
 * the write is sent with as the sealed version.
 *
 * Reads verify everything they can and throw a VerificationError otherwise, never
 * returning unverified data: the tag (a value altered, sealed with other keys, or moved
 * to another storage key fails with AUTHENTICATION) and, for a value written
 * conditionally, that the server reports the version the writer wrote (VERSION
 * otherwise: an older value served as newer). What a reader cannot tell: a value
 * written unconditionally (version -1) rolled back to an older one written the same way;
 * a whole key rolled back together with its version; a key deleted or hidden from a
 * listing; the same value moved to the same key of another store or user sharing these
 * Keys (the associated data binds the storage key only).
 */
export class EncryptedStore {
  /** client is the VssClient every call goes through. */
  readonly client: VssClient;
  /** obfuscator hides the keys. */
  readonly obfuscator: KeyObfuscator;
  /** builder seals and opens the values. */
  readonly builder: StorableBuilder;

  constructor(client: VssClient, keys: Keys, options: EncryptedStoreOptions = {}) {
    this.client = client;
    this.obfuscator = new KeyObfuscator(keys.obfuscationMasterKey);
    this.builder = new StorableBuilder(keys.dataEncryptionKey, options.entropy ?? platformEntropy);
  }

  /** storageKey returns the key as the server stores it: key obfuscated. */
  storageKey(key: string): string {
    return this.obfuscator.obfuscate(key);
  }

  /**
   * get reads key of storeId and returns its value, verified. A missing key fails as
   * VssClient.getObject does (ConnectError, Code.NotFound).
   */
  async get(storeId: string, key: string, options?: CallOptions): Promise<EncryptedValue> {
    const storageKey = this.storageKey(key);
    const res = await this.client.getObject({ storeId, key: storageKey }, options);
    const opened = openVerified(this.builder, storageKey, res.value, utf8ToBytes(storageKey));
    return { key, storageKey, value: opened.value, version: res.value?.version ?? 0n, sealedVersion: opened.sealedVersion };
  }

  /**
   * put writes items (and deletes options.deleteItems) in one transaction, each value
   * sealed with the version it is sent with; options.globalVersion is checked and bumped
   * as PutObjects does.
   */
  async put(storeId: string, items: EncryptedItem[], options: PutOptions = {}): Promise<void> {
    const { deleteItems = [], globalVersion, ...call } = options;
    const transactionItems = items.map((item) => {
      const storageKey = this.storageKey(item.key);
      return { key: storageKey, version: item.version, value: this.builder.build(item.value, item.version, utf8ToBytes(storageKey)) };
    });
    await this.client.putObjects(
      {
        storeId,
        globalVersion,
        transactionItems,
        deleteItems: deleteItems.map((d) => ({ key: this.storageKey(d.key), version: d.version })),
      },
      call,
    );
  }

  /**
   * delete deletes key of storeId if its version is version (-1: any), as DeleteObject
   * does: a missing key or another version is not an error.
   */
  async delete(storeId: string, key: string, version: bigint, options?: CallOptions): Promise<void> {
    await this.client.deleteObject({ storeId, keyValue: { key: this.storageKey(key), version } }, options);
  }

  /**
   * list returns every key of storeId in clear with its version (all pages, newest
   * created first) and the store's global version. A key that does not deobfuscate
   * fails the listing with a VerificationError (FORMAT): the store holds a key these
   * Keys did not write.
   */
  async list(
    storeId: string,
    options: { pageSize?: number; signal?: AbortSignal } = {},
  ): Promise<{ keyVersions: EncryptedKeyVersion[]; globalVersion: bigint }> {
    const keyVersions: EncryptedKeyVersion[] = [];
    let globalVersion: bigint | undefined;
    for await (const page of listKeyVersionPages(this.client, storeId, options)) {
      globalVersion ??= page.globalVersion ?? 0n;
      for (const kv of page.keyVersions) {
        keyVersions.push({ key: this.obfuscator.deobfuscate(kv.key), storageKey: kv.key, version: kv.version });
      }
    }
    return { keyVersions, globalVersion: globalVersion ?? 0n };
  }
}
