/** An app bundled by esbuild with no asset handling: fused-loss/inline carries its wasm. */
import * as api from "fused-loss/inline";
import { runScenario } from "./scenario.js";

api.init().then(
  () => (window.__result = { page: runScenario(api) }),
  (e) => (window.__error = String(e?.stack ?? e)),
);
