/** init() under the page's Content-Security-Policy: the backend chosen, or the error. */
import * as api from "/dist/browser.js";

api.init().then(
  () => (window.__result = { backend: api.getBackend() }),
  (e) => (window.__result = { error: e.message }),
);
