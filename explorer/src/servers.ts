// Which servers the explorer may call: the one that serves it, plus the origins that
// server lists in config.json (vss-server --explorer-allowed-servers). Nothing the page
// reads from its address can add to the list; the server's Content-Security-Policy
// enforces the same list in the browser.

/** originOf returns the origin of an http(s) URL, or undefined for anything else. */
export function originOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * allowedServers reads config.json's allowedServers and returns the servers the page may
 * call: own first, then each listed origin once. A missing or malformed config allows
 * only own.
 */
export function allowedServers(own: string, config: unknown): string[] {
  const servers = [own];
  const listed = (config as { allowedServers?: unknown } | null)?.allowedServers;
  if (Array.isArray(listed)) {
    for (const s of listed) {
      const origin = typeof s === "string" ? originOf(s) : undefined;
      if (origin !== undefined && !servers.includes(origin)) {
        servers.push(origin);
      }
    }
  }
  return servers;
}

/**
 * chooseServer returns the server a link's ?server= asks for, as one of servers, or
 * undefined when it names no allowed server. Only the origin counts: the page always
 * calls the allowed origin, never the URL the link gave.
 */
export function chooseServer(wanted: string, servers: readonly string[]): string | undefined {
  const origin = originOf(wanted);
  return origin !== undefined && servers.includes(origin) ? origin : undefined;
}

/** loadAllowedServers fetches config.json next to the page; on any failure only own is allowed. */
export async function loadAllowedServers(own: string): Promise<string[]> {
  try {
    const res = await fetch(new URL("config.json", document.baseURI), { cache: "no-cache", credentials: "same-origin" });
    return allowedServers(own, res.ok ? await res.json() : undefined);
  } catch {
    return [own];
  }
}
