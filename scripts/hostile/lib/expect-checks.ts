/** Bun test glue: turns a scenario result's named checks into readable assertions. */
import { expect } from "bun:test";
import type { Check } from "./cli.ts";

/** Asserts that check `name` of `result` passed; a failure shows the check's numbers. */
export function expectCheck(result: { checks: Record<string, Check> } | null | undefined, name: string): void {
  if (!result) throw new Error("The scenario did not run (see the beforeAll error)");
  const c = result.checks[name];
  if (!c) throw new Error(`The scenario has no check "${name}"; it has ${Object.keys(result.checks).join(", ")}`);
  expect({ [name]: c.ok ? "ok" : c.detail }).toEqual({ [name]: "ok" });
}

/** Prints the result's numbers (without the per-check details) on one line for the CI log. */
export function printResult(result: Record<string, unknown>): void {
  const { checks: _checks, params: _params, ...numbers } = result;
  console.log(`${String(result.scenario)} result: ${JSON.stringify(numbers)}`);
}
