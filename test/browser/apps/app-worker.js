/** The bundled app's worker: the bundler resolves "fused-loss" and its wasm URL here too. */
import * as api from "fused-loss";
import { runScenario } from "./scenario.js";

api.init().then(
  () => postMessage(runScenario(api)),
  (e) => postMessage({ error: String(e?.stack ?? e) }),
);
