/**
 * A client for VSS (Versioned Storage Service) servers: the generated messages and
 * service descriptor of vss.v1, authentication (the secp256k1 signature scheme, bearer
 * tokens and LNURL-auth), client constructors, and the multi-device helpers: the change feed
 * (listChangePages, listAllChanges, watchChanges) and leases with fencing
 * (acquireLease), with their typed errors; moving a user's data between servers
 * (exportData, importData, abortImport, verifyDump) and deleting it (deleteStore,
 * deleteAllData); client-side encryption as vss-client-ng and
 * LDK Node do it (Keys, KeyObfuscator, StorableBuilder, EncryptedStore, LdkStore,
 * VerificationError). The transports live in "@govss/vss-client/web"
 * (browsers, Connect-Web) and "@govss/vss-client/node" (Node.js, Connect-Node).
 *
 * @module
 */
export * from "./gen/vss/v1/vss_pb.js";
export {
  SIGNING_CONSTANT,
  authInterceptor,
  bearerAuth,
  publicKeyHex,
  signatureAuth,
  signatureHeader,
  type PrivateKey,
  type VssAuth,
} from "./auth.js";
export { DEFAULT_REFRESH_BEFORE_MS, LnurlAuth, lnurlAuth, type LnurlAuthOptions } from "./lnurl.js";
export {
  DEVICE_ID_HEADER,
  checkDeviceId,
  clientInterceptors,
  createVssClient,
  deviceIdInterceptor,
  listAllKeyVersions,
  listKeyVersionPages,
  vssErrorCode,
  type ListAllOptions,
  type VssClient,
  type VssClientOptions,
} from "./client.js";
export {
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_TIMEOUT_MS,
  retryInterceptor,
  type RetryPolicy,
} from "./retry.js";
export {
  CursorExpiredError,
  LeaseHeldError,
  LeaseLostError,
  feedError,
  feedErrorReason,
  type LeaseLostReason,
} from "./errors.js";
export {
  ChangeWatcher,
  DEFAULT_WATCH_IDLE_TIMEOUT_MS,
  DEFAULT_WATCH_MAX_BACKOFF_MS,
  listAllChanges,
  listChangePages,
  watchChanges,
  type ListChangesOptions,
  type WatchOptions,
  type WatchState,
  type WatchStatus,
} from "./feed.js";
export {
  HeldLease,
  LEASE_NAME_HEADER,
  LEASE_TOKEN_HEADER,
  acquireLease,
  type AcquireLeaseOptions,
  type DeleteObjectRequestInit,
  type PutObjectsRequest,
} from "./lease.js";
export {
  DEFAULT_IMPORT_CHUNK_BYTES,
  DEFAULT_MAX_RECORD_BYTES,
  DELETE_ALL_DATA_CONFIRM,
  DELETE_STORE_CONFIRM,
  DUMP_MAGIC,
  DumpExport,
  DumpFormatError,
  abortImport,
  checkImportId,
  deleteAllData,
  deleteStore,
  exportData,
  importData,
  verifyDump,
  type CallRetryOptions,
  type DeleteAllDataResult,
  type DeleteOptions,
  type DeleteStoreResult,
  type DumpErrorReason,
  type DumpSource,
  type DumpSummary,
  type ExportOptions,
  type ExportProgress,
  type ImportOptions,
  type ImportProgress,
  type ImportResult,
} from "./dump.js";
/** dumpv1 holds the records of the dump format (docs/dump-format.md), vss.dump.v1. */
export * as dumpv1 from "./gen/vss/dump/v1/dump_pb.js";
export {
  CIPHER_FORMAT,
  KeyObfuscator,
  Keys,
  StorableBuilder,
  VSS_HARDENED_CHILD_INDEX,
  VSS_SIGNING_CHILD_INDEX,
  VerificationError,
  VerificationErrorKind,
  checkSealedVersion,
  keysFromVssSeed,
  keysFromWalletSeed,
  platformEntropy,
  signingKeyFromWalletSeed,
  vssSeedFromWalletSeed,
  type EntropySource,
  type Opened,
} from "./encryption.js";
export {
  EncryptedStore,
  type DeleteItem,
  type EncryptedItem,
  type EncryptedKeyVersion,
  type EncryptedStoreOptions,
  type EncryptedValue,
  type PutOptions,
} from "./encrypted-store.js";
export {
  LDK_SCHEMA_VERSION_KEY,
  LDK_V0_WALLET_PREFIX,
  LdkStore,
  type LdkKey,
  type LdkNamespace,
  type LdkOpenOptions,
  type LdkSchemaSource,
  type LdkSchemaVersion,
  type LdkValue,
} from "./ldk.js";
