// A throwaway vss-server for the tests: the real binary, started on a free loopback port
// with an in-memory store, stopped when the tests end. The explorer's browser tests use it
// too.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
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
 * startServer starts vss-server with an in-memory store on a port the kernel picks, plus
 * extra flags, and resolves once it accepts connections.
 */
export async function startServer(flags: string[], env: Record<string, string> = {}): Promise<TestServer> {
  const args = ["--listen", "127.0.0.1:0", "--database-url", "memory:", "--log-format", "json", ...flags];
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

function stopChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
  }
}
