/**
 * This platform's wasm provider and `init`, imported (not registered) by ts/backend.ts so
 * that no bundler can drop the link as an unused side effect. From source (tests, tsc)
 * and in the Node build it is Node's; tsup.config.ts substitutes ts/wasm/browser-provider.ts
 * or ts/wasm/inline-provider.ts for this file when it builds those entries.
 */
export { provider, init } from "./wasm/node-provider.js";
