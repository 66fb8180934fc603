import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isJournalStream, journalPrefix, stderrLine } from "./journal.ts";
import { createLogger } from "./logger.ts";

const dir = mkdtempSync(join(tmpdir(), "owsla-journal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file descriptor and the `dev:inode` JOURNAL_STREAM value that names it. */
function streamFile(name: string): { fd: number; stream: string } {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  const st = statSync(path, { bigint: true });
  return { fd, stream: `${st.dev}:${st.ino}` };
}

describe("isJournalStream", () => {
  test("matches the descriptor whose device and inode JOURNAL_STREAM names", () => {
    const a = streamFile("a");
    const b = streamFile("b");
    expect(isJournalStream(a.fd, a.stream)).toBe(true);
    expect(isJournalStream(b.fd, a.stream)).toBe(false);
    closeSync(a.fd);
    closeSync(b.fd);
  });

  test("is false when the variable is unset, malformed or the descriptor is closed", () => {
    const a = streamFile("c");
    expect(isJournalStream(a.fd, undefined)).toBe(false);
    expect(isJournalStream(a.fd, "")).toBe(false);
    expect(isJournalStream(a.fd, "12-34")).toBe(false);
    closeSync(a.fd);
    expect(isJournalStream(a.fd, a.stream)).toBe(false);
  });
});

describe("logger priorities for journald", () => {
  test("each line starts with the syslog priority of its level when writing to the journal", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "debug", journal: true, write: (l) => lines.push(l) });
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    expect(lines.map((l) => l.slice(0, 3))).toEqual(["<7>", "<6>", "<4>", "<3>"]);
    expect(JSON.parse(lines[2]!.slice(3))).toMatchObject({ level: "warn", msg: "w" });
  });

  test("pretty lines carry the prefix too, and no line does when not writing to the journal", () => {
    const lines: string[] = [];
    createLogger({ pretty: true, journal: true, write: (l) => lines.push(l) }).warn("careful");
    createLogger({ journal: false, write: (l) => lines.push(l) }).error("plain");
    expect(lines[0]).toMatch(/^<4>\d{4}-.* WARN  careful$/);
    expect(lines[1]!.startsWith("{")).toBe(true);
  });

  test("setLevel changes the level of the root logger and its children", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "warn", journal: false, write: (l) => lines.push(l) });
    const child = log.child({ worker: 1 });
    child.info("hidden");
    log.setLevel("debug");
    child.debug("shown");
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["shown"]);
  });

  test("stderrLine prefixes every line only when stderr is the journal", () => {
    expect(stderrLine("a\nb", "error", {})).toBe("a\nb");
    expect(journalPrefix("error")).toBe("<3>");
  });
});
