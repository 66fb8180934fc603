/**
 * Builds the single-file binaries: dist/owsla-linux-x64, dist/owsla-linux-arm64 and
 * dist/owsla-linux-x64-musl (`bun build --compile`). Each holds everything: the workers are
 * the same binary started again and the dashboard is embedded. Then a Debian package per
 * glibc architecture (dist/owsla_<version>_amd64.deb, _arm64.deb; see package-deb.ts) and
 * dist/SHA256SUMS over the binaries and packages.
 *
 * Usage: bun scripts/build.ts [target ...]   (targets: x64, arm64, x64-musl; default all)
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { DEB_ARCH, buildDeb, writeChecksums } from "./package-deb.ts";

const ROOT = resolve(import.meta.dir, "..");
const TARGETS: Record<string, string> = {
  x64: "bun-linux-x64",
  arm64: "bun-linux-arm64",
  "x64-musl": "bun-linux-x64-musl",
};

const wanted = process.argv.slice(2);
for (const t of wanted) {
  if (!(t in TARGETS)) {
    console.error(`Unknown target "${t}"; choose from ${Object.keys(TARGETS).join(", ")}`);
    process.exit(2);
  }
}
const git = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT, stderr: "ignore" });
const commit = git.success ? git.stdout.toString().trim() : "unknown";
mkdirSync(join(ROOT, "dist"), { recursive: true });

const built: string[] = [];
for (const name of wanted.length ? wanted : Object.keys(TARGETS)) {
  const target = TARGETS[name]!;
  const out = join(ROOT, "dist", `owsla-linux-${name}`);
  const info = JSON.stringify({ version: pkg.version, commit, target });
  const started = performance.now();
  const r = Bun.spawnSync(
    [process.execPath, "build", "--compile", `--target=${target}`, "--minify", "--sourcemap", `--define`, `OWSLA_BUILD=${info}`, join(ROOT, "main.ts"), "--outfile", out],
    { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
  );
  if (!r.success) {
    console.error(`Build of ${out} failed:\n${r.stderr.toString()}${r.stdout.toString()}`);
    process.exit(1);
  }
  built.push(name);
  console.log(`built ${out} (${target}, commit ${commit}) in ${Math.round(performance.now() - started)} ms`);
}

if (!Bun.which("dpkg-deb")) {
  console.error("dpkg-deb not found: no .deb packages built (install dpkg, e.g. on Debian/Ubuntu, to build them)");
} else {
  for (const name of built.filter((n) => n in DEB_ARCH)) {
    try {
      console.log(`built ${buildDeb(name)}`);
    } catch (e) {
      console.error(`Packaging ${name} failed: ${(e as Error).message}`);
      process.exit(1);
    }
  }
}
console.log(`wrote ${writeChecksums()}`);
