#!/bin/bash
# Builds the distribution packages into OUTDIR and prints their sizes and the
# build time:
#   jit_VERSION_ARCH.deb, jit-selinux_VERSION_all.deb     (debhelper)
#   jit-VERSION.x86_64.rpm, jit-selinux-VERSION.noarch.rpm (rpmbuild)
#   jitd.pp                                               (the SELinux module)
#   packages.json                                         (sizes and times)
#
#   scripts/package.sh [--profile release|dev] OUTDIR
#
# The release profile is the default; the tests package the dev build that
# scripts/test.sh has just made (a release build takes minutes on 2 cores).
# Needs cargo, debhelper, rpm and selinux-policy-dev (scripts/install-deps.sh).
# Honours CARGO_TARGET_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

profile=release
if [[ "${1:-}" == --profile ]]; then
    profile=${2:?--profile needs release or dev}
    shift 2
fi
[[ $# -eq 1 ]] || { echo "usage: scripts/package.sh [--profile release|dev] OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)

started=$(date +%s.%N)
cargo build --quiet --profile "$profile" -p jitd -p jit-deliver -p jit-session -p pam_jit -p jit-docgen
built=$(date +%s.%N)

meta=$(cargo metadata --format-version 1 --no-deps)
target=$(jq -r .target_directory <<<"$meta")
version=$(jq -r '.packages[] | select(.name == "jitd") | .version' <<<"$meta")
bin="$target/$([[ $profile == dev ]] && echo debug || echo "$profile")"
deb_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
[[ "${deb_version%-*}" == "$version" ]] || {
    echo "packaging/debian/changelog is at $deb_version, the workspace at $version: add a changelog entry" >&2
    exit 1
}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Binaries as shipped: stripped (the release profile strips already).
mkdir "$work/bin"
for f in jitd jitctl jit-deliver jit-session jit-polkit-check libpam_jit.so; do
    strip --strip-unneeded -o "$work/bin/$f" "$bin/$f"
done
"$bin/jit-docgen" "$work/docs"
cp selinux/jitd.te selinux/jitd.if selinux/jitd.fc "$work/"
make --quiet -C "$work" -f /usr/share/selinux/devel/Makefile jitd.pp >/dev/null

# The install tree; the arguments are where each distribution keeps units,
# PAM modules, zsh completions and SELinux modules.
stage() {
    local root=$1 unitdir=$2 pamdir=$3 zshdir=$4 selinuxdir=$5 d=$work/docs
    install -D -m0755 "$work/bin/jitd" "$root/usr/sbin/jitd"
    install -D -m0755 "$work/bin/jitctl" "$root/usr/bin/jitctl"
    install -D -m0755 "$work/bin/jit-session" "$root/usr/libexec/jit/jit-session"
    install -D -m0755 "$work/bin/jit-polkit-check" "$root/usr/libexec/jit/jit-polkit-check"
    install -D -m0755 "$work/bin/jit-deliver" "$root/usr/libexec/jit/jit-deliver"
    install -D -m0644 "$work/bin/libpam_jit.so" "$root$pamdir/pam_jit.so"
    install -D -m0644 packaging/jitd.toml "$root/etc/jit/jitd.toml"
    install -D -m0644 packaging/systemd/jitd.service "$root$unitdir/jitd.service"
    install -D -m0644 packaging/systemd/jit-deliver.service "$root$unitdir/jit-deliver.service"
    install -D -m0644 packaging/systemd/jit-ticket.service "$root$unitdir/jit-ticket.service"
    install -D -m0644 packaging/systemd/jit.tmpfiles "$root/usr/lib/tmpfiles.d/jit.conf"
    install -D -m0644 packaging/systemd/jit.sysusers "$root/usr/lib/sysusers.d/jit.conf"
    install -D -m0644 packaging/dbus/org.jit.Daemon1.conf "$root/usr/share/dbus-1/system.d/org.jit.Daemon1.conf"
    install -D -m0644 packaging/dbus/org.jit.Daemon1.service "$root/usr/share/dbus-1/system-services/org.jit.Daemon1.service"
    install -D -m0644 packaging/dbus/org.jit.Daemon1.xml "$root/usr/share/dbus-1/interfaces/org.jit.Daemon1.xml"
    install -D -m0644 packaging/polkit/20-jit.rules "$root/usr/share/polkit-1/rules.d/20-jit.rules"
    install -D -m0644 packaging/ssh/jit-vendors.conf "$root/usr/share/jit/sshd_config.d/jit-vendors.conf"
    install -D -m0644 packaging/logrotate/jit-siem "$root/etc/logrotate.d/jit-siem"
    install -D -m0644 -t "$root/usr/share/man/man1" "$d"/man/*.1
    install -D -m0644 -t "$root/usr/share/man/man8" "$d"/man/*.8
    for name in jitd jitctl; do
        install -D -m0644 "$d/completions/bash/$name.bash" "$root/usr/share/bash-completion/completions/$name"
    done
    install -D -m0644 -t "$root$zshdir" "$d"/completions/zsh/_*
    install -D -m0644 -t "$root/usr/share/fish/vendor_completions.d" "$d"/completions/fish/*.fish
    install -D -m0644 "$work/jitd.pp" "$root$selinuxdir/jitd.pp"
}

# Debian: staged/ is what debian/rules installs and dh splits into the two packages.
src="$work/deb/jit-$version"
mkdir -p "$src"
cp -r packaging/debian "$src/debian"
stage "$src/staged" /lib/systemd/system "/usr/lib/$multiarch/security" \
    /usr/share/zsh/vendor-completions /usr/share/selinux/default
for pam_profile in jit jit-session jit-sshd jit-sshd-session; do
    install -D -m0644 "packaging/pam/$pam_profile" "$src/staged/usr/share/pam-configs/$pam_profile"
done
(cd "$src" && dpkg-buildpackage --build=binary --no-pre-clean --no-sign >"$work/dpkg-buildpackage.log" 2>&1) || {
    cat "$work/dpkg-buildpackage.log" >&2
    exit 1
}
debs=("$work"/deb/*.deb)

# RPM: the same tree with Fedora's paths.
libdir=$(rpm --eval '%{_libdir}')
stage "$work/rpm-root" /usr/lib/systemd/system "$libdir/security" \
    /usr/share/zsh/site-functions /usr/share/selinux/packages/targeted
rpmbuild -bb --quiet --target "$(uname -m)" \
    --define "_topdir $work/rpmbuild" \
    --define "jit_version $version" \
    --define "stage $work/rpm-root" \
    packaging/rpm/jit.spec >"$work/rpmbuild.log" 2>&1 || {
    cat "$work/rpmbuild.log" >&2
    exit 1
}
rpms=("$work"/rpmbuild/RPMS/*/*.rpm)

rm -f "$out"/*.deb "$out"/*.rpm
cp "${debs[@]}" "${rpms[@]}" "$work/jitd.pp" "$out/"
finished=$(date +%s.%N)

{
    printf '{\n  "profile": "%s",\n  "version": "%s",\n' "$profile" "$version"
    awk -v s="$started" -v b="$built" -v f="$finished" \
        'BEGIN { printf "  \"cargo_seconds\": %.1f,\n  \"packaging_seconds\": %.1f,\n", b - s, f - b }'
    printf '  "pam_jit_so_bytes": %d,\n  "files": {\n' "$(stat -c %s "$work/bin/libpam_jit.so")"
    sep=""
    for f in "${debs[@]}" "${rpms[@]}" "$work/jitd.pp"; do
        printf '%s    "%s": %d' "$sep" "$(basename "$f")" "$(stat -c %s "$f")"
        sep=$',\n'
    done
    printf '\n  }\n}\n'
} >"$out/packages.json"

echo "Packages ($profile build) in $out:"
for f in "${debs[@]}" "${rpms[@]}" "$work/jitd.pp"; do
    printf '  %-40s %9s bytes\n' "$(basename "$f")" "$(stat -c %s "$f")"
done
printf '  %-40s %9s bytes\n' "pam_jit.so (installed)" "$(stat -c %s "$work/bin/libpam_jit.so")"
jq -r '"Time: cargo build \(.cargo_seconds) s, packaging \(.packaging_seconds) s"' "$out/packages.json"
