#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: as root it first installs the Debian
# packages the tests start as real peers; as anyone else it names the missing ones and stops.
# Then `cargo test`. Extra arguments go to cargo test (e.g. `scripts/test.sh --test mqtt`).
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests start, by package: cups-*: print release against a real cupsd and
# ippeveprinter (ipptool submits the jobs); dbus: ippeveprinter wants a bus (the tests start
# a private one); mosquitto and openssl: MQTT (and its TLS test CA); slapd and ldap-utils:
# LDAP sync; python3: the SCIM test server; python3-aiosmtpd: the SMTP test server; systemd:
# systemd-analyze rates and verifies the unit; chromium and chromium-driver: the
# self-service page in a real browser; gcc, libc6-dev, pkg-config: building the crate.
PACKAGES=(ca-certificates gcc libc6-dev pkg-config mosquitto openssl slapd ldap-utils
    cups-daemon cups-client cups-ipp-utils dbus python3 python3-aiosmtpd faketime systemd
    chromium chromium-driver)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "the tests need these Debian packages: ${missing[*]}" >&2
        echo "install them as root:  apt-get install --no-install-recommends ${missing[*]}" >&2
        echo "(slapd: first 'echo slapd slapd/no_configuration boolean true | debconf-set-selections'" >&2
        echo " so no system instance is set up; the tests start their own)" >&2
        exit 1
    fi
    echo "== installing: ${missing[*]}"
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup, stable) first" >&2; exit 1; }
echo "== cargo test $*"
exec cargo test "$@"
