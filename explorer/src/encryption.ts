// Client-side encryption in the explorer: the keys typed into the page, how a stored key
// reads in clear, and what the page says about a value's verification. The keys live only
// in the page's memory (the Query that holds them) and every decryption happens here.
import {
  EncryptedStore,
  Keys,
  LdkStore,
  VerificationError,
  VerificationErrorKind,
  keysFromWalletSeed,
  signingKeyFromWalletSeed,
  type VssClient,
} from "@govss/vss-client";

/** KeyInput is what the encryption fields of the form hold. */
export type KeyInput =
  | { mode: "off" }
  | { mode: "seed"; walletSeed: string }
  | { mode: "keys"; dataEncryptionKey: string; obfuscationMasterKey: string };

/** walletSeed checks a typed wallet seed and returns it as hex. */
function walletSeed(typed: string): string {
  const seed = typed.trim();
  if (!/^([0-9a-fA-F]{2}){16,64}$/.test(seed)) {
    throw new Error("the wallet seed is not 32 to 128 hex characters (16 to 64 bytes; LDK Node's seed is 64 bytes)");
  }
  return seed;
}

/**
 * signingKeyFromInput returns the key LDK Node signs its requests with, derived from a
 * typed wallet seed (m/877'/139'), or throws an Error the page shows as it is.
 */
export function signingKeyFromInput(typedSeed: string): Uint8Array {
  return signingKeyFromWalletSeed(walletSeed(typedSeed));
}

/**
 * keysFromInput derives the Keys from the form's fields, or returns undefined when
 * encryption is off; it throws an Error whose message the page shows as it is.
 */
export function keysFromInput(input: KeyInput): Keys | undefined {
  switch (input.mode) {
    case "off":
      return undefined;
    case "seed":
      return keysFromWalletSeed(walletSeed(input.walletSeed));
    case "keys": {
      const dek = input.dataEncryptionKey.trim();
      const omk = input.obfuscationMasterKey.trim();
      for (const [name, value] of [
        ["data encryption key", dek],
        ["obfuscation master key", omk],
      ] as const) {
        if (!/^[0-9a-fA-F]{64}$/.test(value)) {
          throw new Error(`the ${name} is not 64 hex characters (32 bytes)`);
        }
      }
      return new Keys(dek, omk);
    }
  }
}

/**
 * View is how the page reads an encrypted store: as vss-client-ng applications store
 * keys (EncryptedStore), or in LDK Node's layout (LdkStore), as openView found it.
 */
export type View = { kind: "plain"; store: EncryptedStore; storeId: string } | { kind: "ldk"; ldk: LdkStore };

/**
 * openView finds how storeId is laid out: LDK Node's layout when LDK Node's own detection
 * recognises it (its vss_schema_version key, or V0 wallet keys), else vss-client-ng's. It
 * writes nothing.
 */
export async function openView(client: VssClient, keys: Keys, storeId: string): Promise<View> {
  const store = new EncryptedStore(client, keys);
  const ldk = await LdkStore.open(store, storeId, { readOnly: true });
  if (ldk.schemaSource === "stored" || ldk.schemaSource === "bdk-wallet") {
    return { kind: "ldk", ldk };
  }
  return { kind: "plain", store, storeId };
}

/** describeView says in a sentence how the page reads the store. */
export function describeView(view: View): string {
  if (view.kind === "plain") {
    return "Encrypted store (vss-client-ng): keys deobfuscated and values decrypted in this page.";
  }
  const how =
    view.ldk.schemaSource === "stored"
      ? "found by its vss_schema_version key"
      : "no schema key, but keys under bdk_wallet#, as LDK Node tells its first layout";
  const binds =
    view.ldk.schema === "V1"
      ? "each value is bound to its key"
      : "namespaces are stored in clear and values are not bound to their keys";
  return `LDK Node store, schema ${view.ldk.schema} (${how}): ${binds}; keys and values decrypted in this page.`;
}

/** ShownKey is a stored key as the listing shows it. */
export interface ShownKey {
  storageKey: string;
  /** key is the key in clear, when it deobfuscates. */
  key?: string;
  /** namespace is "primary/secondary" in an LDK Node store. */
  namespace?: string;
  primaryNamespace?: string;
  secondaryNamespace?: string;
  /** failure says why the key does not read in clear. */
  failure?: string;
}

/** showKey reads a stored key in clear, or says why it cannot. */
export function showKey(view: View, storageKey: string): ShownKey {
  try {
    if (view.kind === "plain") {
      return { storageKey, key: view.store.obfuscator.deobfuscate(storageKey) };
    }
    const { primaryNamespace, secondaryNamespace, key } = view.ldk.parseStorageKey(storageKey);
    return { storageKey, key, primaryNamespace, secondaryNamespace, namespace: `${primaryNamespace}/${secondaryNamespace}` };
  } catch (err) {
    return { storageKey, failure: failureText(err) };
  }
}

/** failureText says what a failed verification means, in the words the page shows. */
export function failureText(err: unknown): string {
  if (!(err instanceof VerificationError)) {
    return err instanceof Error ? err.message : String(err);
  }
  switch (err.kind) {
    case VerificationErrorKind.FORMAT:
      return `Verification failed (FORMAT): ${err.detail}. Nothing of it is shown.`;
    case VerificationErrorKind.AUTHENTICATION:
      return (
        "Verification failed (AUTHENTICATION): the tag does not verify. The value was altered, sealed with other keys, " +
        "or moved here from another key. Nothing of it is shown."
      );
    case VerificationErrorKind.VERSION:
      return (
        `Verification failed (VERSION): the value was written as version ${err.sealedVersion! + 1n}, ` +
        `but the server serves it as version ${err.serverVersion}: an older value served as newer (a rollback). Nothing of it is shown.`
      );
  }
}

/** verifiedText says what was verified about a value that opened. */
export function verifiedText(view: View, sealedVersion: bigint, serverVersion: bigint): string {
  const bound = view.kind === "ldk" && view.ldk.schema === "V0";
  const head = bound
    ? "Decrypted: the tag verifies, but LDK Node's V0 layout binds no key, so the server could have moved this value from another key."
    : "Decrypted and verified: the tag covers the value and the key it is stored under.";
  const version =
    sealedVersion === -1n
      ? " Written unconditionally (sealed version -1): there is no version to compare."
      : ` Sealed version ${sealedVersion} agrees with the server's version ${serverVersion}.`;
  return head + version;
}
