/**
 * The package as users get it: `npm pack` of this repository, installed from the tarball
 * into a fresh project outside it (offline: a local tarball with no dependencies).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));

export interface Installed {
  /** The consumer project: its node_modules holds fused-loss. */
  project: string;
  /** The tarball's path. */
  tarball: string;
  /** Files in the tarball, relative to the package root, sorted. */
  files: string[];
}

/** Packs dist/ (already built by `npm test`) and installs it into a new temporary project. */
export function packAndInstall(prefix: string): Installed {
  const project = mkdtempSync(join(tmpdir(), `fused-loss-${prefix}-`));
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--json", "--pack-destination", project], { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }),
  ) as { filename: string; files: { path: string }[] }[];
  const tarball = join(project, packed[0].filename);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }, null, 2));
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", "--no-package-lock", tarball], {
    cwd: project,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (!readdirSync(join(project, "node_modules")).includes("fused-loss")) throw new Error(`npm install of ${tarball} did not install fused-loss`);
  return { project, tarball, files: packed[0].files.map((f) => f.path).sort() };
}

/** Runs a tool of this repository's node_modules (vite, webpack, tsc) in `cwd`. */
export function runRepoBin(script: string, args: string[], cwd: string): string {
  try {
    return execFileSync(process.execPath, [join(REPO, "node_modules", script), ...args], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${script} ${args.join(" ")} failed in ${cwd}:\n${err.stdout ?? ""}\n${err.stderr ?? ""}\n${err.message}`);
  }
}
