/**
 * The documentation ships with the product and points into the repository only: every relative
 * link in README.md, docs/ and examples/ resolves to a file of the repository (and a heading
 * when it names one), nothing refers to paths outside it (`../shared/...`, `/work/...`), and
 * the contract documents in docs/ carry the product contract's text.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "./helpers/gateway.ts";

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return markdownFiles(p);
    return p.endsWith(".md") ? [p] : [];
  });
}

const files = [join(ROOT, "README.md"), ...markdownFiles(join(ROOT, "docs")), ...markdownFiles(join(ROOT, "examples"))];

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

describe("documentation links", () => {
  test("no file refers to a path outside the repository", () => {
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      const bad = text.split("\n").filter((l) => /\.\.\/shared\/|\/work\/|shared\/spec/.test(l));
      expect(bad.length ? `${relative(ROOT, f)}: ${bad[0]}` : "").toBe("");
    }
  });

  test("every relative link resolves to a file (and heading) in the repository", () => {
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1]!;
        if (/^[a-z]+:/.test(link)) continue; // http(s), mailto, file
        const [path, anchor] = link.split("#");
        const target = path ? resolve(dirname(f), path) : f;
        const where = `${relative(ROOT, f)} → ${link}`;
        expect(relative(ROOT, target).startsWith("..") ? `${where} leaves the repository` : "").toBe("");
        expect(existsSync(target) ? "" : `${where} does not exist`).toBe("");
        if (anchor && target.endsWith(".md")) {
          const headings = readFileSync(target, "utf8").split("\n").filter((l) => l.startsWith("#")).map((l) => slug(l.replace(/^#+/, "")));
          expect(headings.includes(anchor) ? "" : `${where}: no such heading`).toBe("");
        }
      }
    }
  });
});

describe("the contract ships in docs/", () => {
  for (const name of ["device-protocol.md", "amqp-contract.md"]) {
    test(`docs/${name} links the gateway's notes where the contract is silent`, () => {
      expect(readFileSync(join(ROOT, "docs", name), "utf8")).toContain("(protocol-notes.md");
    });

    // The contract the product was built to, when this machine has it: the shipped text matches.
    const spec = resolve(ROOT, "../shared/spec", name);
    test.skipIf(!existsSync(spec))(`docs/${name} carries the product contract's text unchanged`, () => {
      expect(readFileSync(join(ROOT, "docs", name), "utf8").startsWith(readFileSync(spec, "utf8"))).toBe(true);
    });
  }
});
