#!/bin/bash
# The checks that need no root and run before the tests (scripts/test.sh):
# formatting, clippy with the workspace's lints, and cargo-deny's bans,
# licenses and sources (offline: the advisory database is fetched from
# GitHub, which CI cannot reach; see docs/design.md, "Dependencies").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DENY_VERSION=0.20.2
TOOLS="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/tools"

cargo fmt --all --check
cargo clippy --quiet --all-targets --workspace -- -D warnings
if ! "$TOOLS/bin/cargo-deny" --version 2>/dev/null | grep -q " $DENY_VERSION\$"; then
    echo "Installing cargo-deny $DENY_VERSION into $TOOLS (once per target directory)"
    # A tool, not the product: without its own profile's fat LTO and single
    # codegen unit it builds in a fraction of the time on CI's two cores.
    CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_TARGET_DIR="$TOOLS/build" \
        cargo install --quiet --locked cargo-deny --version "$DENY_VERSION" --root "$TOOLS"
fi
# cargo-deny reads the metadata of every platform's dependencies: fetch
# them all (a build fetches only this platform's), or a fresh machine fails.
cargo fetch --locked --quiet
"$TOOLS/bin/cargo-deny" --offline check --hide-inclusion-graph bans licenses sources
