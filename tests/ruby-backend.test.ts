/**
 * The Ruby example back-end (examples/ruby-backend/backend.rb, bunny) against a real gateway
 * and RabbitMQ: it answers device RPCs the standard way, sends back-end-initiated commands via
 * owsla.down, logs device messages and stops cleanly. Skipped only when Ruby or the bunny gem
 * is missing (CI installs ruby-bunny).
 */
import { join } from "node:path";
import { ROOT } from "./helpers/gateway.ts";
import { describeExampleBackend } from "./helpers/example-backend.ts";

/** Whether `ruby -e 'require "bunny"'` works here. */
function rubyWithBunny(): boolean {
  try {
    return Bun.spawnSync(["ruby", "-e", 'require "bunny"'], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  } catch {
    return false; // no ruby on PATH
  }
}

const hasBunny = rubyWithBunny();
if (!hasBunny) {
  console.warn("SKIPPED tests/ruby-backend.test.ts: `ruby -e 'require \"bunny\"'` failed; install Ruby and the bunny gem (Debian: ruby-bunny) to run it.");
}

describeExampleBackend("Ruby", ["ruby", join(ROOT, "examples/ruby-backend/backend.rb")], hasBunny, "bldg-rb");
