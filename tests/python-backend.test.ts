/**
 * The Python example back-end (examples/python-backend/backend.py, pika) against a real gateway
 * and RabbitMQ: the same suite as the Ruby example (RPC answered the standard way, a command
 * via owsla.down, messages and presence logged, a clean stop). Skipped only when no Python with
 * pika is found (CI installs python3-pika).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers/gateway.ts";
import { describeExampleBackend } from "./helpers/example-backend.ts";

/** A Python interpreter that can `import pika` (Debian's python3-pika is for /usr/bin/python3), or null. */
function pythonWithPika(): string | null {
  const candidates = [Bun.which("python3"), existsSync("/usr/bin/python3") ? "/usr/bin/python3" : null].filter((p): p is string => p !== null);
  for (const py of candidates) {
    try {
      if (Bun.spawnSync([py, "-c", "import pika"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0) return py;
    } catch {
      // not runnable
    }
  }
  return null;
}

const python = pythonWithPika();
if (!python) {
  console.warn("SKIPPED tests/python-backend.test.ts: no python3 can `import pika`; install it (Debian: python3-pika) to run it.");
}

describeExampleBackend("Python", [python ?? "python3", join(ROOT, "examples/python-backend/backend.py")], python !== null, "bldg-py");
