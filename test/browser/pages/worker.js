/** A module Web Worker: loads dist/ itself (import maps do not reach workers). */
import * as api from "/dist/browser.js";
import { runScenario } from "../scenario.js";

api.init().then(
  () => postMessage(runScenario(api)),
  (e) => postMessage({ error: String(e?.stack ?? e) }),
);
