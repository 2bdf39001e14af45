import { Code, ConnectError, type CallOptions } from "@connectrpc/connect";
import { backoffDelay, DEFAULT_INITIAL_BACKOFF_MS, DEFAULT_MAX_BACKOFF_MS } from "./backoff.js";
import { checkDeviceId, DEVICE_ID_HEADER, type VssClient } from "./client.js";
import { feedError, feedErrorReason, LeaseHeldError, LeaseLostError, type LeaseLostReason } from "./errors.js";
import {
  FeedErrorReason,
  type DeleteObjectResponse,
  type Lease,
  type PutObjectResponse,
} from "./gen/vss/v1/vss_pb.js";

/** LEASE_NAME_HEADER names the lease that fences a write (with LEASE_TOKEN_HEADER). */
export const LEASE_NAME_HEADER = "vss-lease-name";

/** LEASE_TOKEN_HEADER carries the fencing token of the writer's grant. */
export const LEASE_TOKEN_HEADER = "vss-lease-token";

/** AcquireLeaseOptions configure acquireLease. */
export interface AcquireLeaseOptions {
  /**
   * deviceId names the writing device in the writes made through the lease
   * (vss-device-id), unless the client's own deviceId option already does.
   */
  deviceId?: string;
  /** signal releases the lease when it aborts, as release() does. */
  signal?: AbortSignal;
  /** onLost is called once when the lease is lost, with the error writes then get. */
  onLost?: (err: LeaseLostError) => void;
}

/** PutObjectsRequest is what VssClient.putObjects takes. */
export type PutObjectsRequest = Parameters<VssClient["putObjects"]>[0];

/** DeleteObjectRequest is what VssClient.deleteObject takes. */
export type DeleteObjectRequestInit = Parameters<VssClient["deleteObject"]>[0];

/** durationMs converts a protobuf Duration to milliseconds. */
function durationMs(d: { seconds: bigint; nanos: number } | undefined): number {
  return d === undefined ? 0 : Number(d.seconds) * 1000 + d.nanos / 1e6;
}

/** duration converts milliseconds to a protobuf Duration. */
function duration(ms: number): { seconds: bigint; nanos: number } {
  const whole = Math.floor(ms);
  return { seconds: BigInt(Math.floor(whole / 1000)), nanos: (whole % 1000) * 1_000_000 };
}

/** notHeld reports whether err is the server's LEASE_NOT_HELD. */
function notHeld(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.FailedPrecondition && feedErrorReason(err) === FeedErrorReason.LEASE_NOT_HELD;
}

/**
 * HeldLease is a grant of a lease that acquireLease obtained. It renews the grant in
 * the background, a third of the time the server reports left (ttl_remaining) after
 * each renewal, retrying failed renewals with backoff. Writes made through it
 * (putObjects, deleteObject) carry the lease's name and fencing token, so that the
 * server commits them only while the grant is in force. Once the lease is lost (a
 * renewal or a write answered LEASE_NOT_HELD, renewals failed until the grant's local
 * deadline passed, or release()) it refuses every write with a LeaseLostError without
 * sending it.
 */
export class HeldLease {
  /** storeId is the store the lease guards, name the lease's name. */
  readonly storeId: string;
  readonly name: string;
  /** holder is the id given when acquiring. */
  readonly holder: string;
  /** token is the grant's fencing token. */
  readonly token: bigint;
  /** whenLost resolves with the LeaseLostError once the lease is lost. */
  readonly whenLost: Promise<LeaseLostError>;

  readonly #client: VssClient;
  readonly #ttlMs: number;
  readonly #deviceId: string | undefined;
  readonly #options: AcquireLeaseOptions;
  #lease: Lease;
  /** #deadline is when the grant ends by the local monotonic clock (performance.now()). */
  #deadline: number;
  #lost: LeaseLostError | undefined;
  #resolveLost!: (err: LeaseLostError) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;

  /** @internal use acquireLease. */
  constructor(client: VssClient, lease: Lease, ttlMs: number, sentAt: number, options: AcquireLeaseOptions) {
    this.#client = client;
    this.storeId = lease.storeId;
    this.name = lease.name;
    this.holder = lease.holder;
    this.token = lease.token;
    this.#ttlMs = ttlMs;
    this.#deviceId = options.deviceId;
    this.#options = options;
    this.#lease = lease;
    this.#deadline = sentAt + durationMs(lease.ttlRemaining);
    this.whenLost = new Promise((resolve) => (this.#resolveLost = resolve));
    this.#schedule(durationMs(lease.ttlRemaining) / 3);
    options.signal?.addEventListener("abort", () => void this.release().catch(() => {}), { once: true });
  }

  /** lease is the grant as the server last reported it. */
  get lease(): Lease {
    return this.#lease;
  }

  /** lost is the LeaseLostError writes get once the lease is lost, or undefined. */
  get lost(): LeaseLostError | undefined {
    this.#checkDeadline();
    return this.#lost;
  }

  /** held reports whether the lease is still held, as far as this client knows. */
  get held(): boolean {
    return this.lost === undefined;
  }

  /**
   * headers returns the request headers that fence a write with this grant (and name
   * the device, if acquireLease was given one), for writes made through another client
   * or transport. It throws the LeaseLostError once the lease is lost.
   */
  headers(): Record<string, string> {
    this.#checkDeadline();
    if (this.#lost) {
      throw this.#lost;
    }
    const h: Record<string, string> = { [LEASE_NAME_HEADER]: this.name, [LEASE_TOKEN_HEADER]: this.token.toString() };
    if (this.#deviceId !== undefined) {
      h[DEVICE_ID_HEADER] = this.#deviceId;
    }
    return h;
  }

  /**
   * putObjects is VssClient.putObjects fenced by this lease. request.storeId defaults to
   * the lease's store and may not name another. It throws a LeaseLostError, without
   * sending anything, once the lease is lost, and also when the server refuses the
   * write with LEASE_NOT_HELD (the error's cause).
   */
  async putObjects(request: PutObjectsRequest, options: CallOptions = {}): Promise<PutObjectResponse> {
    return this.#fenced(request.storeId, options, (o) => this.#client.putObjects({ ...request, storeId: this.storeId } as PutObjectsRequest, o));
  }

  /** deleteObject is VssClient.deleteObject fenced by this lease, like putObjects. */
  async deleteObject(request: DeleteObjectRequestInit, options: CallOptions = {}): Promise<DeleteObjectResponse> {
    return this.#fenced(request.storeId, options, (o) =>
      this.#client.deleteObject({ ...request, storeId: this.storeId } as DeleteObjectRequestInit, o),
    );
  }

  /**
   * renew extends the grant now (the background renewals call it too) and returns it;
   * a LEASE_NOT_HELD answer loses the lease and throws the LeaseLostError.
   */
  async renew(): Promise<Lease> {
    this.#checkDeadline();
    if (this.#lost) {
      throw this.#lost;
    }
    const sentAt = performance.now();
    try {
      const res = await this.#client.renewLease({ storeId: this.storeId, name: this.name, token: this.token, ttl: duration(this.#ttlMs) });
      if (this.#lost) {
        throw this.#lost; // lost while the renewal was on its way
      }
      if (res.lease) {
        this.#lease = res.lease;
        this.#deadline = sentAt + durationMs(res.lease.ttlRemaining);
      }
      return this.#lease;
    } catch (err) {
      if (notHeld(err)) {
        throw this.#lose("not-held", err);
      }
      throw err;
    }
  }

  /**
   * release gives the lease up: writes through it are refused from now on, and the
   * server ends the grant so that another holder may take it at once. It resolves to
   * whether the server ended the grant (false when it had already ended).
   */
  async release(): Promise<boolean> {
    const wasLost = this.#lost !== undefined;
    this.#lose("released");
    if (wasLost && this.#lost?.reason === "not-held") {
      return false;
    }
    const res = await this.#client.releaseLease({ storeId: this.storeId, name: this.name, token: this.token });
    return res.released;
  }

  async #fenced<T>(storeId: string | undefined, options: CallOptions, call: (o: CallOptions) => Promise<T>): Promise<T> {
    if (storeId !== undefined && storeId !== this.storeId) {
      throw new Error(`lease ${JSON.stringify(this.name)} guards store ${JSON.stringify(this.storeId)}, not ${JSON.stringify(storeId)}`);
    }
    const headers = new Headers(options.headers);
    for (const [name, value] of Object.entries(this.headers())) {
      if (name !== DEVICE_ID_HEADER || !headers.has(name)) {
        headers.set(name, value);
      }
    }
    try {
      return await call({ ...options, headers });
    } catch (err) {
      if (notHeld(err)) {
        throw this.#lose("not-held", err);
      }
      throw err;
    }
  }

  /** #checkDeadline loses the lease once its local deadline has passed. */
  #checkDeadline(): void {
    if (!this.#lost && performance.now() >= this.#deadline) {
      this.#lose("expired");
    }
  }

  /** #lose ends the lease for reason, once, and returns the error writes get. */
  #lose(reason: LeaseLostReason, cause?: unknown): LeaseLostError {
    if (this.#lost) {
      return this.#lost;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#lost = new LeaseLostError(reason, this.storeId, this.name, this.token, cause);
    this.#resolveLost(this.#lost);
    this.#options.onLost?.(this.#lost);
    return this.#lost;
  }

  /** #schedule runs the next renewal in ms, or loses the lease at its deadline if sooner. */
  #schedule(ms: number): void {
    if (this.#lost) {
      return;
    }
    const untilDeadline = this.#deadline - performance.now();
    if (untilDeadline <= ms) {
      // Timers may fire a fraction of a millisecond early by performance.now(): check
      // again until the deadline has passed.
      this.#timer = setTimeout(() => {
        this.#checkDeadline();
        this.#schedule(Infinity);
      }, Math.max(Math.ceil(untilDeadline), 0) + 1);
      return;
    }
    this.#timer = setTimeout(() => void this.#renewInBackground(), ms);
  }

  async #renewInBackground(): Promise<void> {
    try {
      const lease = await this.renew();
      this.#failures = 0;
      this.#schedule(durationMs(lease.ttlRemaining) / 3);
    } catch {
      if (this.#lost) {
        return;
      }
      // Any other failure may pass (a broken connection, a server restarting, a token
      // being refreshed): retry until the grant's deadline.
      this.#failures++;
      this.#schedule(backoffDelay(this.#failures, DEFAULT_INITIAL_BACKOFF_MS, DEFAULT_MAX_BACKOFF_MS));
    }
  }
}

/**
 * acquireLease asks the server for the lease name on storeId for holder (for example
 * the device id), for ttlMs (1 s to 1 h), and returns the grant as a HeldLease that
 * renews itself until release() or until it is lost. When another holder has the
 * lease it throws a LeaseHeldError naming that holder.
 *
 * ```ts
 * const lease = await acquireLease(vss, "wallet", "node", "laptop", 30_000, { deviceId: "laptop" });
 * try {
 *   await lease.putObjects({ transactionItems: [{ key: "monitor", version: -1n, value }] });
 * } finally {
 *   await lease.release();
 * }
 * ```
 */
export async function acquireLease(
  client: VssClient,
  storeId: string,
  name: string,
  holder: string,
  ttlMs: number,
  options: AcquireLeaseOptions = {},
): Promise<HeldLease> {
  if (options.deviceId !== undefined) {
    checkDeviceId(options.deviceId);
  }
  const sentAt = performance.now();
  let lease: Lease | undefined;
  try {
    lease = (await client.acquireLease({ storeId, name, holder, ttl: duration(ttlMs) }, { signal: options.signal })).lease;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.FailedPrecondition && feedErrorReason(err) === FeedErrorReason.LEASE_HELD) {
      throw new LeaseHeldError(feedError(err)?.lease, err);
    }
    throw err;
  }
  if (!lease) {
    throw new Error("the server granted the lease without describing it");
  }
  return new HeldLease(client, lease, ttlMs, sentAt, options);
}
