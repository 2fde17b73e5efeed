/**
 * The published package: `npm pack`, installed from the tarball into a temporary project
 * outside this repository. ESM `import`, CommonJS `require` (no await, no setup) and strict
 * TypeScript consumers (node16 and bundler resolution, with and without DOM types) all
 * work, and the tarball holds only what users need.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packAndInstall, REPO, runRepoBin, type Installed } from "./support/pack.js";

let pkg: Installed;

beforeAll(() => {
  pkg = packAndInstall("package");
}, 120_000);
afterAll(() => {
  if (pkg) rmSync(pkg.project, { recursive: true, force: true });
});

/** Runs a consumer script in the temporary project and returns what it printed as JSON. */
function runConsumer(file: string, code: string): unknown {
  writeFileSync(join(pkg.project, file), code);
  const env = { ...process.env };
  delete env.FUSED_LOSS_BACKEND;
  return JSON.parse(execFileSync(process.execPath, [file], { cwd: pkg.project, encoding: "utf8", env }));
}

// The same computation in every consumer, on values whose loss Node computes below.
const COMPUTE = `
  const input = { data: new Float32Array([2, 0.5, -1, 0.1, 0.2, 3]), shape: [2, 3] };
  const ce = new api.CrossEntropyLoss({ labelSmoothing: 0.1 });
  const { loss, grad } = ce.forwardBackward(input, new Int32Array([0, 2]));
  const focal = new api.FocalLoss({ gamma: 2 }).forward(input, [0, 2]);
  const result = { backend: api.getBackend(), loss, grad: Array.from(grad), focal, init: typeof api.init };
`;

async function expectedResult() {
  const api = await import("../dist/index.js");
  const input = { data: new Float32Array([2, 0.5, -1, 0.1, 0.2, 3]), shape: [2, 3] };
  const { loss, grad } = new api.CrossEntropyLoss({ labelSmoothing: 0.1 }).forwardBackward(input, new Int32Array([0, 2]));
  const focal = new api.FocalLoss({ gamma: 2 }).forward(input, [0, 2]);
  return { backend: "simd", loss, grad: Array.from(grad), focal, init: "function" };
}

describe("npm pack", () => {
  it("holds the bundles, their declarations, both wasm builds, README, LICENSE and package.json, nothing else", () => {
    expect(pkg.files).toEqual([
      "LICENSE",
      "README.md",
      "dist/browser.js",
      "dist/fused_loss_scalar.wasm",
      "dist/fused_loss_simd.wasm",
      "dist/index.cjs",
      "dist/index.d.cts",
      "dist/index.d.ts",
      "dist/index.js",
      "dist/inline.cjs",
      "dist/inline.js",
      "dist/tfjs.cjs",
      "dist/tfjs.d.cts",
      "dist/tfjs.d.ts",
      "dist/tfjs.js",
      "package.json",
    ]);
  });

  it("ESM: import from 'fused-loss' runs the SIMD build in Node with no await; 'fused-loss/inline' too", async () => {
    const out = runConsumer(
      "esm.mjs",
      `import * as api from "fused-loss";
       import * as inline from "fused-loss/inline";
       ${COMPUTE}
       const inlineLoss = new inline.CrossEntropyLoss({ labelSmoothing: 0.1 }).forward(input, new Int32Array([0, 2]));
       await api.init(); // isomorphic code awaits it everywhere; in Node it resolves at once
       console.log(JSON.stringify({ result, inline: { backend: inline.getBackend(), loss: inlineLoss },
         resolved: [import.meta.resolve("fused-loss"), import.meta.resolve("fused-loss/inline")].map((u) => u.replace(/^.*node_modules/, "")) }));`,
    );
    const expected = await expectedResult();
    expect(out).toEqual({
      result: expected,
      inline: { backend: "simd", loss: expected.loss },
      resolved: ["/fused-loss/dist/index.js", "/fused-loss/dist/inline.js"],
    });
  });

  it("CommonJS: require('fused-loss') and require('fused-loss/inline') work synchronously", async () => {
    const out = runConsumer(
      "cjs.cjs",
      `const api = require("fused-loss");
       const inline = require("fused-loss/inline");
       ${COMPUTE}
       const inlineLoss = new inline.CrossEntropyLoss({ labelSmoothing: 0.1 }).forward(input, new Int32Array([0, 2]));
       console.log(JSON.stringify({ result, inline: { backend: inline.getBackend(), loss: inlineLoss },
         resolved: [require.resolve("fused-loss"), require.resolve("fused-loss/inline")].map((p) => p.replace(/^.*node_modules/, "")) }));`,
    );
    const expected = await expectedResult();
    expect(out).toEqual({
      result: expected,
      inline: { backend: "simd", loss: expected.loss },
      resolved: ["/fused-loss/dist/index.cjs", "/fused-loss/dist/inline.cjs"],
    });
  });

  it("fused-loss/tfjs from the tarball, ESM and CommonJS: its loss and gradient equal tf.losses.softmaxCrossEntropy", () => {
    // TensorFlow.js is the consumer's (an optional peer dependency): this repository's, linked.
    const tfDir = join(pkg.project, "node_modules", "@tensorflow");
    if (!existsSync(tfDir)) symlinkSync(join(REPO, "node_modules", "@tensorflow"), tfDir, "dir");
    const code = (load: string) => `${load}
      const logits = tf.tensor2d([[2, 0.5, -1], [0.1, 0.2, 3]]);
      const labels = tf.oneHot(tf.tensor1d([0, 2], "int32"), 3);
      const ours = adapter.categoricalCrossentropy();
      const value = (f) => tf.valueAndGrad((x) => f(labels, x))(logits);
      const a = value(ours);
      const b = value((y, x) => tf.losses.softmaxCrossEntropy(y, x));
      console.log(JSON.stringify({ loss: [a.value.dataSync()[0], b.value.dataSync()[0]], grad: [Array.from(a.grad.dataSync()), Array.from(b.grad.dataSync())],
        focal: adapter.sparseCategoricalFocalLoss({ gamma: 2 })(tf.tensor1d([0, 2], "int32"), logits).dataSync()[0] }));`;
    writeFileSync(join(pkg.project, "tfjs.mjs"), code('import * as tf from "@tensorflow/tfjs"; import * as adapter from "fused-loss/tfjs";'));
    writeFileSync(join(pkg.project, "tfjs.cjs"), code('const tf = require("@tensorflow/tfjs"); const adapter = require("fused-loss/tfjs");'));
    const [esm, cjs] = ["tfjs.mjs", "tfjs.cjs"].map((f) => JSON.parse(execFileSync(process.execPath, [f], { cwd: pkg.project, encoding: "utf8" })));
    expect(cjs).toEqual(esm);
    expect(esm.loss[0]).toBeCloseTo(esm.loss[1], 6);
    esm.grad[0].forEach((g: number, i: number) => expect(g).toBeCloseTo(esm.grad[1][i], 6));
    expect(esm.focal).toBeGreaterThan(0);
    expect(esm.focal).toBeLessThan(esm.loss[0]);
  });

  it("the ESM and CommonJS builds agree with FUSED_LOSS_BACKEND=scalar", () => {
    const code = (load: string) => `${load}
      const input = { data: new Float32Array([2, 0.5, -1, 0.1, 0.2, 3]), shape: [2, 3] };
      console.log(JSON.stringify({ backend: api.getBackend(), loss: api.crossEntropy(input, [0, 2]) }));`;
    writeFileSync(join(pkg.project, "env.mjs"), code('import * as api from "fused-loss";'));
    writeFileSync(join(pkg.project, "env.cjs"), code('const api = require("fused-loss");'));
    const env = { ...process.env, FUSED_LOSS_BACKEND: "scalar" };
    const [esm, cjs] = ["env.mjs", "env.cjs"].map((f) => JSON.parse(execFileSync(process.execPath, [f], { cwd: pkg.project, encoding: "utf8", env })));
    expect(esm.backend).toBe("scalar");
    expect(cjs).toEqual(esm);
  });

  it("bundled for Node with tree-shaking (sideEffects: false honoured), the losses still reach the wasm provider", async () => {
    const esbuild = await import("esbuild");
    const out = join(pkg.project, "bundled");
    mkdirSync(out, { recursive: true });
    const source = `import { crossEntropy, getBackend } from "fused-loss";
      import * as inline from "fused-loss/inline";
      const input = { data: new Float32Array([2, 0.5, -1, 0.1, 0.2, 3]), shape: [2, 3] };
      console.log(JSON.stringify({ main: [getBackend(), crossEntropy(input, [0, 2])], inline: [inline.getBackend(), inline.crossEntropy(input, [0, 2])] }));`;
    writeFileSync(join(pkg.project, "bundle-entry.mjs"), source);
    for (const format of ["esm", "cjs"] as const) {
      const file = join(out, `app.${format === "esm" ? "mjs" : "cjs"}`);
      await esbuild.build({ entryPoints: [join(pkg.project, "bundle-entry.mjs")], bundle: true, platform: "node", format, minify: true, treeShaking: true, outfile: file, logLevel: "error" });
      // The main entry reads its .wasm beside the JavaScript that runs: the bundle, here.
      for (const v of ["simd", "scalar"]) copyFileSync(join(pkg.project, `node_modules/fused-loss/dist/fused_loss_${v}.wasm`), join(out, `fused_loss_${v}.wasm`));
      const result = JSON.parse(execFileSync(process.execPath, [file], { cwd: out, encoding: "utf8" }));
      const expected = (await expectedResult()).backend;
      expect(result.main[0], format).toBe(expected);
      expect(result.inline, format).toEqual(result.main);
    }
  });

  const CONSUMER_TS = `
import { CrossEntropyLoss, FocalLoss, init, getBackend, type InitOptions, type LossAndGrad, type Tensor } from "fused-loss";
import * as inline from "fused-loss/inline";

const input: Tensor = { data: new Float32Array(6), shape: [2, 3] };
const ce = new CrossEntropyLoss({ reduction: "sum", labelSmoothing: 0.1 });
const out: LossAndGrad = ce.forwardBackward(input, new Int32Array([0, 2]));
const grad: Float32Array = out.grad;
const loss: number | Float32Array = new FocalLoss({ gamma: 2 }).forward(input, [0, 1]);
const options: InitOptions = { wasm: new Uint8Array(8), backend: "scalar" };
const moreOptions: InitOptions[] = [{ wasm: "/fused_loss_simd.wasm" }, { wasm: { simd: new ArrayBuffer(8) } }, { backend: "auto" }];
// @ts-expect-error: not a reduction
new CrossEntropyLoss({ reduction: "avg" });
// @ts-expect-error: not a backend
void init({ backend: "gpu" });
export async function main(): Promise<string> {
  await init(options);
  await inline.init();
  return \`\${getBackend()} \${grad.length} \${String(loss)} \${moreOptions.length}\`;
}
`;

  /** Type-checks `files` with tsc --strict and `compilerOptions`, including the package's .d.ts. */
  function typeCheck(name: string, compilerOptions: Record<string, unknown>, files: Record<string, string>): void {
    for (const [file, text] of Object.entries(files)) writeFileSync(join(pkg.project, file), text);
    const config = { compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, target: "ES2022", ...compilerOptions }, files: Object.keys(files) };
    writeFileSync(join(pkg.project, `${name}.json`), JSON.stringify(config, null, 2));
    runRepoBin("typescript/bin/tsc", ["-p", `${name}.json`], pkg.project);
  }

  it("strict TypeScript, moduleResolution node16, ESM and CommonJS files, no DOM library and no @types", () => {
    typeCheck("tsconfig.node16", { module: "node16", moduleResolution: "node16", lib: ["ES2022"], types: [] }, {
      "consumer.mts": CONSUMER_TS,
      "consumer.cts": CONSUMER_TS.replace("export async function", "async function").replace(/^import \* as inline.*$/m, 'import inline = require("fused-loss/inline");') + "void main;\n",
    });
  });

  it("strict TypeScript, moduleResolution bundler, with the DOM library (a WebAssembly.Module is a source)", () => {
    typeCheck("tsconfig.bundler", { module: "ESNext", moduleResolution: "bundler", lib: ["ES2022", "DOM"], types: [] }, {
      "consumer-bundler.ts": CONSUMER_TS + "export const compiled: InitOptions = { wasm: new WebAssembly.Module(new Uint8Array(8)) };\n",
    });
  });
});
