import { expect, test } from "bun:test";

test("a flood of unhandled rejections is logged a few times per kind of error, with a stack, and the process goes on", async () => {
  // In a child process: the handlers are process-wide.
  const script = `
    import { guardProcess } from ${JSON.stringify(import.meta.dir + "/guard-process.ts")};
    const lines = [];
    guardProcess({ warn: (msg, f) => lines.push({ msg, ...f }), error: () => {} });
    for (let i = 0; i < 1000; i++) Promise.reject(new Error("read ECONNRESET"));
    Promise.reject(new Error("another kind"));
    await Bun.sleep(50);
    console.log(JSON.stringify(lines));
  `;
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  expect(code).toBe(0);
  const lines = JSON.parse(out) as { msg: string; err: string; stack?: string }[];
  expect(lines.filter((l) => l.err === "read ECONNRESET")).toHaveLength(5);
  expect(lines.filter((l) => l.err === "another kind")).toHaveLength(1);
  expect(lines.every((l) => l.msg === "Ignored an unhandled promise rejection" && typeof l.stack === "string")).toBe(true);
});
