// A throwaway vss-server for the tests: the real binary, started on a free loopback port
// with an in-memory store, stopped when the tests end. The explorer's browser tests use it
// too.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** TestServer is a running vss-server. */
export interface TestServer {
  /** baseUrl is the server's root URL, e.g. http://127.0.0.1:41234. */
  baseUrl: string;
  /** log returns what the server logged so far. */
  log(): string;
  /** stop terminates the server and waits for it to exit. */
  stop(): Promise<void>;
}

/** repositoryRoot is the nearest directory above this file that holds go.mod. */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "go.mod")) && dirname(dir) !== dir) {
    dir = dirname(dir);
  }
  return dir;
}

/**
 * serverBinary is bin/vss-server of the repository (build it with `make build`), or the
 * path in VSS_SERVER_BIN.
 */
export function serverBinary(): string {
  const bin = process.env.VSS_SERVER_BIN ?? join(repositoryRoot(), "bin", "vss-server");
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: run make build (or set VSS_SERVER_BIN)`);
  }
  return bin;
}

/**
 * startServer starts vss-server with an in-memory store on a port the kernel picks (unless
 * flags hold a --listen of their own), plus extra flags, and resolves once it accepts
 * connections.
 */
export async function startServer(flags: string[], env: Record<string, string> = {}): Promise<TestServer> {
  const listen = flags.includes("--listen") ? [] : ["--listen", "127.0.0.1:0"];
  const args = [...listen, "--database-url", "memory:", "--log-format", "json", ...flags];
  const child = spawn(serverBinary(), args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const addr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("vss-server did not start within 30 s:\n" + lines.join("\n")));
    }, 30_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`vss-server exited with ${code} before serving:\n` + lines.join("\n")));
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; addr?: string };
        if (entry.msg === "serving VSS" && entry.addr) {
          clearTimeout(timer);
          resolve(entry.addr);
        }
      } catch {
        // not a log line of ours; keep it for the error message
      }
    });
  });
  return {
    baseUrl: "http://" + addr,
    log: () => lines.join("\n"),
    stop: async () => {
      stopChild(child);
      await exited;
    },
  };
}

/** LnurlTestServer is a running vss-server with the LNURL-auth issuer. */
export interface LnurlTestServer extends TestServer {
  /** lnurlUrl is the issuer's endpoint, http://localhost:<port>/auth/lnurl. */
  lnurlUrl: string;
}

/**
 * startLnurlServer starts vss-server as startServer does, with --lnurl-auth and extra
 * flags. The LNURLs it answers lead to its public URL, which must name a host (not an IP
 * address), so that is http://localhost:<port>, and the port is picked before the start;
 * if another process takes it meanwhile, the start is tried again on another port.
 */
export async function startLnurlServer(flags: string[]): Promise<LnurlTestServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const server = await startServer([
        "--listen",
        `127.0.0.1:${port}`,
        "--lnurl-auth",
        "--public-url",
        `http://localhost:${port}`,
        ...flags,
      ]);
      return { ...server, lnurlUrl: `http://localhost:${port}/auth/lnurl` };
    } catch (err) {
      if (attempt >= 5 || !String(err).includes("address already in use")) {
        throw err;
      }
    }
  }
}

/** freePort returns a loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function stopChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
  }
}
