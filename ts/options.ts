/** Option parsing shared by every loss: unknown names, reductions, numbers. */

export type Reduction = "none" | "mean" | "sum";

const camel = (name: string): string => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** The closest allowed name (PyTorch's snake_case first, then typos), if any is close. */
function suggest(name: string, allowed: readonly string[]): string | undefined {
  const c = camel(name);
  const exact = allowed.find((a) => a.toLowerCase() === c.toLowerCase());
  if (exact) return exact;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const a of allowed) {
    const d = editDistance(c.toLowerCase(), a.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [a, d];
  }
  return best;
}

/** Rejects option names the loss does not know, suggesting the intended one. */
export function checkOptionNames(owner: string, options: object | undefined, allowed: readonly string[]): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`${owner} options must be an object, got ${options === null ? "null" : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    // (FocalLoss takes the module's `size_average` as `sizeAverage`: suggested below.)
    if ((key === "size_average" || key === "reduce") && allowed.includes("reduction") && !allowed.includes(camel(key))) {
      throw new TypeError(`${owner} got PyTorch's deprecated option '${key}'; use reduction: 'none' | 'mean' | 'sum'`);
    }
    const hint = suggest(key, allowed);
    throw new TypeError(
      `${owner} got an unknown option '${key}'` +
        (hint ? `; did you mean '${hint}'?` : `; valid options are ${allowed.map((a) => `'${a}'`).join(", ")}`),
    );
  }
}

export function parseReduction(value: unknown, fallback: Reduction = "mean"): Reduction {
  if (value === undefined) return fallback;
  if (value === "none" || value === "mean" || value === "sum") return value;
  // PyTorch's wording (torch.nn._reduction.get_enum).
  throw new RangeError(`${String(value)} is not a valid value for reduction`);
}

export function parseNumber(owner: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`${owner}: ${name} must be a number, got ${typeof value === "number" ? "NaN" : typeof value}`);
  }
  return value;
}

export function parseInteger(owner: string, name: string, value: unknown, fallback: number): number {
  const n = parseNumber(owner, name, value, fallback);
  if (!Number.isInteger(n)) throw new TypeError(`${owner}: ${name} must be an integer, got ${n}`);
  return n;
}
