/** Types of scenario.js (plain JavaScript so that browsers and bundlers load it as it is). */
export interface ScenarioCase {
  loss: number | number[];
  grad: number[];
}
export interface ScenarioResult {
  backend: string;
  results: Record<string, ScenarioCase>;
}
export function runScenario(api: unknown): ScenarioResult;
