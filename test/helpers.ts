/** Shared test helpers: fixture decoding, the oracle tolerance, backends under test. */
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import type { BackendName } from "../ts/index.js";

export const BACKENDS: BackendName[] = ["simd", "scalar", "js"];

type Num = number | "NaN" | "Infinity" | "-Infinity";
export interface FixtureTensor {
  shape: number[];
  data: Num[];
}
export interface FixtureCase {
  name: string;
  loss: string;
  options: Record<string, unknown>;
  input: FixtureTensor;
  target: FixtureTensor & { kind: "index" | "prob" };
  gradOutput?: number | FixtureTensor;
  expected: { loss: Num | FixtureTensor; grad: FixtureTensor };
  deviation?: string;
}
export interface FixtureError {
  name: string;
  loss: string;
  options: Record<string, unknown>;
  input: FixtureTensor;
  target: FixtureTensor & { kind: "index" | "prob" };
  message: string;
}
export interface FixtureFile {
  torch: string;
  cases: FixtureCase[];
  errors?: FixtureError[];
}

export function loadFixtures(name: string): FixtureFile {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), "utf8")) as FixtureFile;
}

export const num = (v: Num): number => (typeof v === "number" ? v : Number(v));
export const f32 = (t: FixtureTensor): Float32Array => Float32Array.from(t.data, num);

/** Options as the JS API takes them (fixtures hold plain JSON). */
export function decodeOptions(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v && typeof v === "object" && "shape" in v && "data" in v) {
      out[k] = { shape: (v as FixtureTensor).shape, data: f32(v as FixtureTensor) };
    } else out[k] = v;
  }
  return out;
}

/**
 * The project's oracle: each element within `1e-5 + 1e-4·|expected|`, with NaN and the
 * infinities in the same places.
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!withinTolerance(actual[i], expected[i])) expect.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

/** One element of the oracle: within `1e-5 + 1e-4·|expected|`, or the same NaN/±Infinity. */
export function withinTolerance(a: number, e: number): boolean {
  if (!Number.isFinite(e)) return Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e));
  return Math.abs(a - e) <= 1e-5 + 1e-4 * Math.abs(e);
}
