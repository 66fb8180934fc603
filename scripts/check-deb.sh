#!/usr/bin/env bash
# Installs a built .deb on this machine, checks it, and removes it again (CI runs this as root
# on a fresh Debian box). Checks: the binary runs (`owsla version`), the installed unit passes
# `systemd-analyze verify`, the system user, state directory and conffile are in place, the
# docs the unit points to are installed, and `dpkg --purge` removes the binary, unit and config.
#
# Usage: scripts/check-deb.sh dist/owsla_<version>_amd64.deb
set -euo pipefail
deb=${1:?usage: scripts/check-deb.sh <package.deb>}
fail() { echo "check-deb: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (Debian package: systemd)"
[ -e /usr/bin/owsla ] && fail "/usr/bin/owsla exists already; remove the installed owsla first"

(cd "$(dirname "$deb")" && sha256sum --ignore-missing -c SHA256SUMS)
dpkg -i "$deb"
trap 'dpkg --purge owsla >/dev/null 2>&1 || true' EXIT

owsla version
getent passwd owsla >/dev/null || fail "the owsla system user was not created"
[ "$(stat -c '%a %U' /var/lib/owsla)" = "700 owsla" ] || fail "/var/lib/owsla is not 0700 owsla"
[ "$(stat -c '%a %G' /etc/owsla/owsla.toml)" = "640 owsla" ] || fail "/etc/owsla/owsla.toml is not 0640 group owsla"
grep -qx 'dir = "/var/lib/owsla"' /etc/owsla/owsla.toml || fail "the packaged config does not set store.dir to /var/lib/owsla"
dpkg-query -W -f='${Conffiles}\n' owsla | grep -q '/etc/owsla/owsla.toml' || fail "/etc/owsla/owsla.toml is not a conffile"
doc=$(sed -n 's#^Documentation=file://##p' /lib/systemd/system/owsla.service)
[ -f "$doc" ] || fail "the unit's Documentation= $doc is not installed"
out=$(systemd-analyze verify /lib/systemd/system/owsla.service 2>&1 || true)
if echo "$out" | grep -q 'owsla.service'; then echo "$out" >&2; fail "systemd-analyze verify reports problems in owsla.service"; fi
systemd-analyze verify /lib/systemd/system/owsla.service

dpkg --purge owsla
trap - EXIT
[ ! -e /usr/bin/owsla ] || fail "/usr/bin/owsla is still there after purge"
[ ! -e /lib/systemd/system/owsla.service ] || fail "the unit is still there after purge"
[ ! -e /etc/owsla/owsla.toml ] || fail "the config is still there after purge"
echo "check-deb: $deb installs, runs, verifies and purges cleanly"
