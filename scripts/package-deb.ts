/**
 * Builds a Debian package of one compiled binary with dpkg-deb, and SHA-256 checksums of
 * everything in dist/. Called by scripts/build.ts; also usable alone:
 *
 *   bun scripts/package-deb.ts x64 [arm64]       (needs dist/owsla-linux-<arch> from the build)
 *
 * The package holds:
 *   /usr/bin/owsla                          the single-file binary
 *   /lib/systemd/system/owsla.service       config/owsla.service, ExecStart=/usr/bin/owsla
 *   /etc/owsla/owsla.toml                   config/owsla.example.toml with store.dir = /var/lib/owsla (a conffile:
 *                                           dpkg keeps local edits on upgrade)
 *   /usr/share/doc/owsla/                   README, install, configuration, monitoring, protocol and
 *                                           AMQP contract docs, the Grafana dashboard, copyright
 * and maintainer scripts that create the `owsla` system user and /var/lib/owsla (0700), reload
 * systemd, restart a running gateway on upgrade, and stop it on removal. Purging removes the
 * config but keeps /var/lib/owsla (device identities and the site secret).
 */
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };

const ROOT = resolve(import.meta.dir, "..");

/** Debian architecture of each build target that gets a package. */
export const DEB_ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64" };

/** Docs shipped in /usr/share/doc/owsla (paths relative to the repository). */
export const PACKAGED_DOCS = [
  "README.md",
  "docs/install.md",
  "docs/configuration.md",
  "docs/monitoring.md",
  "docs/device-protocol.md",
  "docs/amqp-contract.md",
  "docs/protocol-notes.md",
  "docs/architecture.md",
  "docs/grafana/owsla-dashboard.json",
];

const POSTINST = `#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd owsla >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/owsla --no-create-home --shell /usr/sbin/nologin owsla
  fi
  install -d -m 0700 -o owsla -g owsla /var/lib/owsla
  # The config may hold the broker password and the API token: readable by the gateway only.
  chgrp owsla /etc/owsla/owsla.toml && chmod 0640 /etc/owsla/owsla.toml
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    # Upgrade: a running gateway restarts on the new binary (devices reconnect within seconds).
    if [ -n "$2" ]; then systemctl try-restart owsla.service || true; fi
  fi
fi
exit 0
`;

const PRERM = `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop owsla.service || true
  systemctl disable owsla.service >/dev/null 2>&1 || true
fi
exit 0
`;

const POSTRM = `#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
if [ "$1" = purge ]; then
  echo "owsla: /var/lib/owsla (device identities, site secret, outbox) is kept; remove it by hand if it is no longer needed" >&2
fi
exit 0
`;

function run(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (!r.success) throw new Error(`${cmd.join(" ")} failed:\n${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
}

/** The packaged config: the example with the state directory systemd provides. */
export function packagedConfig(example: string): string {
  const out = example.replace(/^dir = "\.\/data"$/m, 'dir = "/var/lib/owsla"');
  if (out === example) throw new Error('config/owsla.example.toml has no line `dir = "./data"` to point at /var/lib/owsla');
  return out;
}

/** The packaged unit: the binary at /usr/bin/owsla. */
export function packagedUnit(unit: string): string {
  const out = unit.replace("ExecStart=/usr/local/bin/owsla ", "ExecStart=/usr/bin/owsla ");
  if (out === unit) throw new Error("config/owsla.service has no ExecStart=/usr/local/bin/owsla line");
  return out;
}

/** Builds dist/owsla_<version>_<debarch>.deb from dist/owsla-linux-<target>; returns its path. */
export function buildDeb(target: string, dist = join(ROOT, "dist")): string {
  const arch = DEB_ARCH[target];
  if (!arch) throw new Error(`No Debian package for target "${target}"; choose from ${Object.keys(DEB_ARCH).join(", ")}`);
  const binary = join(dist, `owsla-linux-${target}`);
  statSync(binary); // throws ENOENT naming the file when the build is missing
  const version = pkg.version;
  const stage = join(dist, `deb-${arch}`);
  rmSync(stage, { recursive: true, force: true });
  const at = (p: string) => join(stage, p);
  for (const d of ["DEBIAN", "usr/bin", "lib/systemd/system", "etc/owsla", "usr/share/doc/owsla/grafana"]) mkdirSync(at(d), { recursive: true });

  cpSync(binary, at("usr/bin/owsla"));
  chmodSync(at("usr/bin/owsla"), 0o755);
  writeFileSync(at("lib/systemd/system/owsla.service"), packagedUnit(readFileSync(join(ROOT, "config/owsla.service"), "utf8")), { mode: 0o644 });
  writeFileSync(at("etc/owsla/owsla.toml"), packagedConfig(readFileSync(join(ROOT, "config/owsla.example.toml"), "utf8")), { mode: 0o640 });
  for (const doc of PACKAGED_DOCS) {
    const dest = doc.startsWith("docs/grafana/") ? `usr/share/doc/owsla/grafana/${basename(doc)}` : `usr/share/doc/owsla/${basename(doc)}`;
    cpSync(join(ROOT, doc), at(dest));
    chmodSync(at(dest), 0o644);
  }
  writeFileSync(at("usr/share/doc/owsla/copyright"), `Owsla ${version}: edge IoT connection gateway.\nBundles the Bun runtime (MIT) and hono, uuid, @cloudamqp/amqp-client (MIT/Apache-2.0).\n`, { mode: 0o644 });

  const installedKb = Math.ceil(Number(run(["du", "-sk", "--exclude=DEBIAN", stage]).split("\t")[0]));
  writeFileSync(
    at("DEBIAN/control"),
    [
      "Package: owsla",
      `Version: ${version}`,
      `Architecture: ${arch}`,
      "Maintainer: Owsla maintainers <owsla@localhost>",
      "Section: net",
      "Priority: optional",
      "Depends: libc6, passwd",
      `Installed-Size: ${installedKb}`,
      `Description: ${pkg.description}`,
      " Devices hold long-lived TCP connections (NDJSON line protocol); Owsla forwards what they",
      " say to RabbitMQ and routes commands back. One binary: a supervisor and worker processes.",
      "",
    ].join("\n"),
  );
  writeFileSync(at("DEBIAN/conffiles"), "/etc/owsla/owsla.toml\n");
  for (const [name, text] of [["postinst", POSTINST], ["prerm", PRERM], ["postrm", POSTRM]] as const) {
    writeFileSync(at(`DEBIAN/${name}`), text, { mode: 0o755 });
  }
  const out = join(dist, `owsla_${version}_${arch}.deb`);
  run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", stage, out]);
  rmSync(stage, { recursive: true, force: true });
  return out;
}

/** Writes dist/SHA256SUMS for every binary and package in dist/ (format of `sha256sum`, checkable with `sha256sum -c`). */
export function writeChecksums(dist = join(ROOT, "dist")): string {
  const files = readdirSync(dist)
    .filter((f) => (f.startsWith("owsla-linux-") && !f.endsWith(".map")) || f.endsWith(".deb"))
    .sort();
  const lines = files.map((f) => `${new Bun.CryptoHasher("sha256").update(readFileSync(join(dist, f))).digest("hex")}  ${f}`);
  const out = join(dist, "SHA256SUMS");
  writeFileSync(out, lines.join("\n") + "\n");
  return out;
}

if (import.meta.main) {
  const targets = process.argv.slice(2);
  if (targets.length === 0) {
    console.error(`Usage: bun scripts/package-deb.ts <${Object.keys(DEB_ARCH).join("|")}> ...`);
    process.exit(2);
  }
  for (const t of targets) console.log(`built ${buildDeb(t)}`);
  console.log(`wrote ${writeChecksums()}`);
}
