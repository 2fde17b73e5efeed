/**
 * The package in real headless Chromium (Debian's, driven by playwright-core): a plain
 * module page importing dist/, production apps built by Vite and by webpack 5 with no
 * configuration, an esbuild app on fused-loss/inline, and Web Workers. Every one computes
 * the scenario (cross-entropy and focal losses with gradients) and must match Node's
 * results bit for bit: the same wasm build (or the same JS) runs on the same inputs.
 *
 * The apps are built once per run, from the npm-packed tarball installed into a temporary
 * project, and one browser instance serves every test.
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packAndInstall, REPO, runRepoBin } from "../support/pack.js";
import type { ScenarioResult } from "./scenario.js";
import { browserRequired, CHROMIUM_ARGS, findChromium, serve, type StaticServer } from "./support.js";

const chromiumPath = findChromium();
const HERE = fileURLToPath(new URL(".", import.meta.url));

if (!chromiumPath) {
  const say = browserRequired ? "FAILING" : "SKIPPING";
  console.warn(`\n${"!".repeat(78)}\n!! ${say} the browser tests: no Chromium (set FUSED_LOSS_CHROMIUM or run scripts/setup-browser.sh)\n${"!".repeat(78)}\n`);
}

if (!chromiumPath && browserRequired) {
  describe("headless Chromium", () => {
    it("is installed (scripts/setup-browser.sh installs Debian's chromium)", () => {
      expect(chromiumPath, "/usr/bin/chromium").toBeDefined();
    });
  });
}

type Api = typeof import("../../dist/index.js");
type BackendName = "simd" | "scalar" | "js";

/** Node's results for each backend: the reference every browser result must equal. */
async function nodeReference(): Promise<Record<BackendName, ScenarioResult>> {
  const api: Api = await import("../../dist/index.js");
  const { runScenario } = await import("./scenario.js");
  const out = {} as Record<BackendName, ScenarioResult>;
  for (const backend of ["simd", "scalar", "js"] as const) {
    api.setBackend(backend);
    out[backend] = runScenario(api);
  }
  api.setBackend("auto");
  return out;
}

/** Every number equal bit for bit (Object.is: -0 and NaN too), with a path to the first difference. */
function expectSameResults(actual: ScenarioResult, expected: ScenarioResult, what: string): void {
  expect(actual.backend, `${what}: backend`).toBe(expected.backend);
  expect(Object.keys(actual.results).sort(), `${what}: cases`).toEqual(Object.keys(expected.results).sort());
  for (const [name, want] of Object.entries(expected.results)) {
    const got = actual.results[name];
    const pairs: [string, number[], number[]][] = [
      ["loss", ([] as number[]).concat(got.loss), ([] as number[]).concat(want.loss)],
      ["grad", got.grad, want.grad],
    ];
    for (const [part, a, e] of pairs) {
      expect(a.length, `${what} ${name} ${part} length`).toBe(e.length);
      const i = e.findIndex((v, k) => !Object.is(v, a[k]));
      if (i >= 0) expect.fail(`${what} ${name} ${part}[${i}]: got ${a[i]}, Node gave ${e[i]}`);
    }
  }
}

describe.runIf(!!chromiumPath)("in headless Chromium", () => {
  let browser: Browser;
  let server: StaticServer;
  let reference: Record<BackendName, ScenarioResult>;
  let apps: string;
  let cspPolicy = "";
  let viteDevApp: string;

  beforeAll(async () => {
    reference = await nodeReference();
    // The apps consume the package as users do: packed, installed, resolved by name.
    const { project } = packAndInstall("browser");
    apps = project;
    const app = (name: string, files: Record<string, string>): string => {
      const dir = join(project, name);
      for (const [to, from] of Object.entries(files)) {
        mkdirSync(join(dir, to, ".."), { recursive: true });
        copyFileSync(from, join(dir, to));
      }
      return dir;
    };
    const shared = (prefix: string) => ({
      [`${prefix}app-main.js`]: join(HERE, "apps/app-main.js"),
      [`${prefix}app-worker.js`]: join(HERE, "apps/app-worker.js"),
      [`${prefix}scenario.js`]: join(HERE, "scenario.js"),
      [`${prefix}mulberry32.js`]: join(HERE, "mulberry32.js"),
    });
    // Vite 7, production build, no config file (--base: where the test server serves it).
    const vite = app("vite", { ...shared(""), "index.html": join(HERE, "apps/index.html") });
    runRepoBin("vite/bin/vite.js", ["build", "--logLevel", "warn", "--base", "/apps/vite/dist/"], vite);
    // The same sources for Vite's dev server (started by its test).
    viteDevApp = app("vite-dev", { ...shared(""), "index.html": join(HERE, "apps/index.html") });
    // webpack 5 through webpack-cli with no config: ./src/index.js → ./dist/main.js.
    const webpack = app("webpack", { ...shared("src/"), "src/index.js": join(HERE, "apps/app-main.js") });
    runRepoBin("webpack-cli/bin/cli.js", ["--mode", "production"], webpack);
    writeFileSync(join(webpack, "dist/index.html"), '<!doctype html><meta charset="utf-8"><script src="./main.js"></script>\n');
    // esbuild on fused-loss/inline: bundling only, no loader for .wasm.
    const inline = app("esbuild", {
      "main.js": join(HERE, "apps/inline-main.js"),
      "scenario.js": join(HERE, "scenario.js"),
      "mulberry32.js": join(HERE, "mulberry32.js"),
    });
    const esbuild = await import("esbuild");
    await esbuild.build({ entryPoints: [join(inline, "main.js")], bundle: true, format: "esm", outfile: join(inline, "dist/main.js"), logLevel: "error" });
    writeFileSync(join(inline, "dist/index.html"), '<!doctype html><meta charset="utf-8"><script type="module" src="./main.js"></script>\n');

    server = await serve({ "/": REPO, "/apps/": project }, (url): Record<string, string> =>
      url.pathname.endsWith("/csp.html") ? { "content-security-policy": cspPolicy } : {},
    );
    browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (apps) rmSync(apps, { recursive: true, force: true });
  });

  /** Opens `path` in a fresh context; returns the page's report and the paths it requested. */
  async function load<T>(path: string): Promise<{ report: T; requests: string[] }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on("request", (r) => requests.push(new URL(r.url()).pathname));
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.goto(path.startsWith("http") ? path : server.origin + path);
      const handle = await page.waitForFunction(
        () => (window as unknown as { __result?: unknown; __error?: string }).__result ?? (window as unknown as { __error?: string }).__error,
        undefined,
        { timeout: 30_000 },
      );
      const value = await handle.jsonValue();
      if (typeof value === "string") throw new Error(`${path} failed in the page: ${value}`);
      expect(errors, `${path}: uncaught page errors`).toEqual([]);
      return { report: value as T, requests };
    } finally {
      await context.close();
    }
  }

  const wasmRequests = (requests: string[]) => requests.filter((r) => r.endsWith(".wasm"));

  interface PageReport {
    beforeInit: string;
    scenario: ScenarioResult;
  }

  it("plain module page: a loss before init() says to await init(); init() picks SIMD, loads it once, and matches Node", async () => {
    const { report, requests } = await load<PageReport>("/test/browser/pages/page.html");
    expect(report.beforeInit).toMatch(/call `await init\(\)`/);
    expectSameResults(report.scenario, reference.simd, "page");
    // Two concurrent init() calls and a third one: one download, of the SIMD build only.
    expect(wasmRequests(requests)).toEqual(["/dist/fused_loss_simd.wasm"]);
  });

  it("init({ backend: 'scalar' }) forces the scalar build (only it is downloaded); its results equal Node's", async () => {
    const { report, requests } = await load<PageReport>("/test/browser/pages/page.html?mode=scalar");
    expectSameResults(report.scenario, reference.scalar, "forced scalar");
    expect(wasmRequests(requests)).toEqual(["/dist/fused_loss_scalar.wasm"]);
  });

  it("setBackend('scalar') before init() is honoured: init() then loads only the scalar build", async () => {
    const { report, requests } = await load<PageReport>("/test/browser/pages/page.html?mode=setbackend");
    expectSameResults(report.scenario, reference.scalar, "setBackend before init");
    expect(wasmRequests(requests)).toEqual(["/dist/fused_loss_scalar.wasm"]);
  });

  it("the SIMD probe decides: with WebAssembly.validate rejecting SIMD, init() loads the scalar build", async () => {
    const { report, requests } = await load<PageReport>("/test/browser/pages/page.html?mode=stub");
    expectSameResults(report.scenario, reference.scalar, "no-SIMD engine");
    expect(wasmRequests(requests)).toEqual(["/dist/fused_loss_scalar.wasm"]);
  });

  it("without WebAssembly, init() resolves and the pure-JS backend computes Node's JS results", async () => {
    const { report, requests } = await load<PageReport>("/test/browser/pages/page.html?mode=nowasm");
    expectSameResults(report.scenario, reference.js, "no WebAssembly");
    expect(wasmRequests(requests)).toEqual([]);
  });

  it("a module Web Worker importing dist/ matches Node", async () => {
    const { report } = await load<PageReport>("/test/browser/pages/page.html?mode=worker");
    expectSameResults(report.scenario, reference.simd, "worker");
  });

  it("init({ wasm }) takes a URL, a string, bytes, a Response, a promise of one or a compiled Module; wrong input is a clear error", async () => {
    type Case = { backend?: string; loss?: number; error?: string; retried?: string };
    const { report } = await load<Record<string, Case>>("/test/browser/pages/sources.html");
    const api: Api = await import("../../dist/index.js");
    const loss = api.crossEntropy({ data: new Float32Array([2, 0.5, -1, 0.1, 0.2, 3]), shape: [2, 3] }, [0, 2]);
    const ok = (backend: string): Case => ({ backend, loss: loss as number });
    expect(report).toEqual({
      "url string (scalar build, detected)": ok("scalar"),
      "URL object": ok("simd"),
      ArrayBuffer: ok("simd"),
      "Uint8Array at an offset (scalar build)": ok("scalar"),
      Response: ok("simd"),
      "Promise<Response>": ok("simd"),
      "WebAssembly.Module (scalar build)": ok("scalar"),
      "{ simd, scalar }": ok("simd"),
      "{ scalar } only": ok("scalar"),
      "mismatch: scalar build given as simd": {
        error: "Error: fused-loss: the wasm given as the 'simd' build is the 'scalar' build",
        retried: "simd",
      },
      "mismatch: simd build for the scalar backend": {
        error: "Error: fused-loss: the wasm given to init() is the 'simd' build, but the 'scalar' backend was asked for",
        retried: "simd",
      },
      "404": { error: expect.stringMatching(/^Error: fused-loss: cannot load the simd wasm build: fetching \S+\/dist\/missing\.wasm failed: 404/), retried: "simd" },
      "not a source": { error: expect.stringMatching(/^TypeError: init: wasm must be a URL .* got number$/), retried: "simd" },
      "misspelled option": { error: "TypeError: init got an unknown option 'wsam'; did you mean 'wasm'?", retried: "simd" },
    });
  });

  it("under a Content-Security-Policy: without 'wasm-unsafe-eval' init() explains what to allow; with it, SIMD loads", async () => {
    cspPolicy = "script-src 'self'";
    const strict = await load<{ error?: string; backend?: string }>("/test/browser/pages/csp.html");
    expect(strict.report.error).toMatch(/cannot load the simd wasm build: .*'wasm-unsafe-eval'.*init\(\{ backend: 'js' \}\)/);
    cspPolicy = "script-src 'self' 'wasm-unsafe-eval'";
    const allowed = await load<{ error?: string; backend?: string }>("/test/browser/pages/csp.html");
    expect(allowed.report).toEqual({ backend: "simd" });
  });

  interface AppReport {
    page: ScenarioResult;
    worker?: ScenarioResult;
  }

  it("Vite 7 production build (zero config): the wasm is emitted as an asset; page and worker match Node", async () => {
    const assets = readdirSync(join(apps, "vite/dist/assets"));
    expect(assets.filter((f) => f.endsWith(".wasm")).length, `wasm assets in ${assets.join(", ")}`).toBeGreaterThanOrEqual(2);
    const { report, requests } = await load<AppReport>("/apps/vite/dist/index.html");
    expectSameResults(report.page, reference.simd, "vite page");
    expectSameResults(report.worker!, reference.simd, "vite worker");
    expect(wasmRequests(requests).every((r) => /fused_loss_simd.*\.wasm$/.test(r)), wasmRequests(requests).join(", ")).toBe(true);
  });

  it("webpack 5 production build (zero config): page and worker match Node", async () => {
    const { report, requests } = await load<AppReport>("/apps/webpack/dist/index.html");
    expectSameResults(report.page, reference.simd, "webpack page");
    expectSameResults(report.worker!, reference.simd, "webpack worker");
    expect(wasmRequests(requests).length, "the SIMD build, once per realm").toBe(2);
  });

  it("esbuild bundle of fused-loss/inline (no asset handling): nothing fetched, results match Node", async () => {
    const { report, requests } = await load<AppReport>("/apps/esbuild/dist/index.html");
    expectSameResults(report.page, reference.simd, "inline page");
    expect(wasmRequests(requests)).toEqual([]);
  });

  /** Runs Vite's dev server on `dir` (by its CLI, as users do) until `use` is done. */
  async function withViteDev<T>(dir: string, use: (origin: string) => Promise<T>): Promise<T> {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const child = spawn(process.execPath, [join(REPO, "node_modules/vite/bin/vite.js"), "--port", String(port), "--strictPort", "--host", "127.0.0.1"], {
      cwd: dir,
      // vitest may set FORCE_COLOR; colour codes would split the printed address.
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: undefined },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(() => reject(new Error(`vite dev did not start:\n${out}`)), 30_000);
        const seen = (d: Buffer) => {
          out += d.toString();
          if (out.replace(/\x1b\[[0-9;]*m/g, "").includes(`127.0.0.1:${port}`)) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on("data", seen);
        child.stderr.on("data", seen);
        child.once("exit", (code) => reject(new Error(`vite dev exited with ${code}:\n${out}`)));
      });
      return await use(`http://127.0.0.1:${port}`);
    } finally {
      child.kill();
    }
  }

  it("Vite's dev server: the HTML it serves for the moved .wasm is named; with optimizeDeps.exclude the page and worker match Node", async () => {
    const broken = await withViteDev(viteDevApp, (origin) => load<never>(`${origin}/`).then(() => "loaded", (e: Error) => e.message));
    expect(broken).toMatch(/returned an HTML page, not the wasm binary.*optimizeDeps: \{ exclude: \["fused-loss"\] \}/);
    writeFileSync(join(viteDevApp, "vite.config.js"), 'export default { optimizeDeps: { exclude: ["fused-loss"] } };\n');
    const { report } = await withViteDev(viteDevApp, (origin) => load<AppReport>(`${origin}/`));
    expectSameResults(report.page, reference.simd, "vite dev page");
    expectSameResults(report.worker!, reference.simd, "vite dev worker");
  });
});
