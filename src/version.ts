/** Build identity: version, git commit and target, fixed at compile time by scripts/build.ts. */
import pkg from "../package.json" with { type: "json" };

/** What `owsla version` prints. */
export interface BuildInfo {
  version: string;
  commit: string;
  target: string;
}

declare const OWSLA_BUILD: BuildInfo | undefined;

function fromSource(): BuildInfo {
  let commit = "unknown";
  try {
    const r = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: import.meta.dir, stderr: "ignore" });
    if (r.success) commit = r.stdout.toString().trim() || commit;
  } catch {
    // No git: keep "unknown".
  }
  return { version: `${pkg.version}-dev`, commit, target: `source (bun ${Bun.version}, ${process.platform}-${process.arch})` };
}

/** The build info of this program. */
export function buildInfo(): BuildInfo {
  return typeof OWSLA_BUILD !== "undefined" ? OWSLA_BUILD : fromSource();
}

/** The version string alone (cheap; no git call). */
export const VERSION: string = typeof OWSLA_BUILD !== "undefined" ? OWSLA_BUILD.version : `${pkg.version}-dev`;
