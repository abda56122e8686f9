#!/bin/bash
# Runs every test: unit tests of the domain core and the store, and the
# end-to-end tests (private dbus-daemon, real jitd and jitctl, real users in a
# private mount namespace). Needs root; installs what it needs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# Every threat and requirement id cited in the repo is defined in docs/ (no root needed).
scripts/check-ids.sh
[[ $EUID -eq 0 ]] || { echo "scripts/test.sh: run as root (the end-to-end tests create namespaces and users)" >&2; exit 2; }
scripts/install-deps.sh
# Formatting, clippy with the workspace's lints, cargo-deny (scripts/lint.sh).
scripts/lint.sh
cargo build --workspace --bins && cargo build -p pam_jit
# The package tests (tests/tests/packaging.rs) install what this builds from
# the dev binaries above: a release build would take minutes more.
scripts/package.sh --profile dev "$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/packages"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Coverage-guided fuzzing of the parsers, 30 s a target (fuzz/README.md): a
# crash, hang or failed property fails the run.
fuzz/run.sh smoke 30 || status=$?
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
