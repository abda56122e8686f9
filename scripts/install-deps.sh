#!/bin/bash
# Installs the Debian packages the demo and the tests need (idempotent).
set -euo pipefail
needed=(dbus util-linux sqlite3 hyperfine libpam0g-dev pamtester sudo openssh-server openssh-client tmux vim asciinema tlog jq)
# The polkit gate's tests: the real polkitd, pkexec and pkcheck.
needed+=(polkitd pkexec)
# scripts/package.sh and the package tests: .deb and .rpm builds, lintian, the
# SELinux module, a Debian chroot, and systemd-analyze for the unit.
needed+=(debhelper lintian rpm selinux-policy-dev semodule-utils mmdebstrap systemd)
# pam_systemd's profile: the profiles' session lines must come after its (T33).
needed+=(libpam-systemd)
# Managed accounts: shadow-utils, and python3's crypt to check a password against its hash;
# sesearch, to check the SELinux module's rules for them (SELinux itself does not run here).
needed+=(passwd python3 setools libcap2-bin)
# Vendors' network segments: nft for jitd's rules; ip, ss and nc for the tests' network namespaces.
needed+=(nftables iproute2 netcat-openbsd)
# The SIEM feed's tests: Debian's rsyslog with its RELP and TLS (gnutls)
# inputs, and openssl for the test's certificates.
needed+=(rsyslog rsyslog-relp rsyslog-gnutls openssl)
# The fuzz targets: libfuzzer-sys builds libFuzzer (C++).
needed+=(g++)
# The reports' HTML page: headless Chromium renders it (a screenshot, its
# console) in tests/tests/reports.rs, with no network.
needed+=(chromium)
missing=()
for pkg in "${needed[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "Installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
