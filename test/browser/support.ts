/** Headless Chromium and a static file server on 127.0.0.1 for the browser tests. */
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";

/** Debian's Chromium (scripts/setup-browser.sh installs it); FUSED_LOSS_CHROMIUM overrides. */
export function findChromium(): string | undefined {
  const candidates = [process.env.FUSED_LOSS_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

/** Where the browser tests must run rather than be skipped: machines that can install Chromium. */
export const browserRequired = existsSync("/usr/bin/apt-get") || process.env.FUSED_LOSS_REQUIRE_BROWSER === "1";

/** The flags this machine's closed network needs (no background connections, no QUIC). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".cjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

export interface StaticServer {
  origin: string;
  /** Paths requested so far, in order (query strings included). */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves each mount (URL prefix → directory) read-only on 127.0.0.1 at a random port.
 * `headers` adds response headers per request (a CSP, say).
 */
export async function serve(
  mounts: Record<string, string>,
  headers: (url: URL) => Record<string, string> = () => ({}),
): Promise<StaticServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push(url.pathname + url.search);
    const prefix = Object.keys(mounts)
      .filter((p) => url.pathname.startsWith(p))
      .sort((a, b) => b.length - a.length)[0];
    let file: string | undefined;
    if (prefix !== undefined) {
      const root = normalize(mounts[prefix]);
      const candidate = normalize(join(root, decodeURIComponent(url.pathname.slice(prefix.length))));
      if (candidate === root || candidate.startsWith(root.endsWith(sep) ? root : root + sep)) file = candidate;
    }
    if (file && existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!file || !existsSync(file)) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, {
      "content-type": MIME[extname(file)] ?? "application/octet-stream",
      "cache-control": "no-store",
      ...headers(url),
    });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
