/**
 * The Debian package as `npm run build` makes it (scripts/package-deb.ts), built here around a
 * stand-in binary and inspected with dpkg-deb, without installing it (CI installs the real one
 * with scripts/check-deb.sh): files and modes, the conffile, control fields, the unit pointing
 * at /usr/bin/owsla, the config pointing at /var/lib/owsla, valid maintainer scripts, and
 * checksums `sha256sum -c` accepts.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PACKAGED_DOCS, buildDeb, packagedConfig, writeChecksums } from "../scripts/package-deb.ts";

const haveDpkg = Bun.which("dpkg-deb") !== null;
const dist = mkdtempSync(join(tmpdir(), "owsla-deb-"));
afterAll(() => rmSync(dist, { recursive: true, force: true }));

function sh(cmd: string[], cwd = dist): string {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  if (!r.success) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
  return r.stdout.toString();
}

describe.skipIf(!haveDpkg)("Debian package", () => {
  let deb = "";
  test("builds from dist/owsla-linux-x64 into owsla_<version>_amd64.deb", () => {
    writeFileSync(join(dist, "owsla-linux-x64"), "#!/bin/sh\necho owsla stand-in\n", { mode: 0o755 });
    deb = buildDeb("x64", dist);
    expect(deb).toMatch(/owsla_\d+\.\d+\.\d+_amd64\.deb$/);
  });

  test("holds the binary, the unit, the config and the docs the unit points to, owned by root", () => {
    const list = sh(["dpkg-deb", "-c", deb]).split("\n").filter(Boolean);
    const entry = (path: string) => list.find((l) => l.endsWith(` .${path}`));
    expect(entry("/usr/bin/owsla")).toMatch(/^-rwxr-xr-x root\/root /);
    expect(entry("/lib/systemd/system/owsla.service")).toMatch(/^-rw-r--r-- root\/root /);
    expect(entry("/etc/owsla/owsla.toml")).toMatch(/^-rw-r----- root\/root /);
    for (const doc of PACKAGED_DOCS) expect(list.some((l) => l.endsWith(`/${doc.split("/").pop()}`))).toBe(true);
    const unit = sh(["sh", "-c", `dpkg-deb --fsys-tarfile ${deb} | tar -xO ./lib/systemd/system/owsla.service`]);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/owsla serve --config \/etc\/owsla\/owsla\.toml$/m);
    const doc = /^Documentation=file:\/\/(\S+)$/m.exec(unit)![1]!;
    expect(entry(doc)).toBeDefined();
    const config = sh(["sh", "-c", `dpkg-deb --fsys-tarfile ${deb} | tar -xO ./etc/owsla/owsla.toml`]);
    expect(config).toMatch(/^dir = "\/var\/lib\/owsla"$/m);
  });

  test("marks the config as a conffile and has control fields and valid maintainer scripts", () => {
    expect(sh(["dpkg-deb", "-f", deb, "Package", "Architecture", "Depends"])).toBe("Package: owsla\nArchitecture: amd64\nDepends: libc6, passwd\n");
    const ctrl = join(dist, "ctrl");
    sh(["dpkg-deb", "-e", deb, ctrl]);
    expect(sh(["cat", join(ctrl, "conffiles")])).toBe("/etc/owsla/owsla.toml\n");
    for (const s of ["postinst", "prerm", "postrm"]) sh(["sh", "-n", join(ctrl, s)]);
    const postinst = sh(["cat", join(ctrl, "postinst")]);
    expect(postinst).toContain("useradd --system");
    expect(postinst).toContain("install -d -m 0700 -o owsla -g owsla /var/lib/owsla");
  });

  test("SHA256SUMS lists the binary and the package and verifies", () => {
    writeChecksums(dist);
    const sums = sh(["cat", "SHA256SUMS"]);
    expect(sums).toMatch(/^[0-9a-f]{64} {2}owsla-linux-x64$/m);
    expect(sums).toMatch(/^[0-9a-f]{64} {2}owsla_\S+_amd64\.deb$/m);
    expect(sh(["sha256sum", "-c", "SHA256SUMS"])).toContain("OK");
  });
});

test("packagedConfig refuses an example without the data directory line", () => {
  expect(() => packagedConfig("[store]\ndir = \"/x\"\n")).toThrow(/no line `dir = "\.\/data"`/);
});
