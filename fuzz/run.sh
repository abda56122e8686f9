#!/bin/bash
# Builds and runs the fuzz targets with libFuzzer on stable Rust (README.md).
#
#   fuzz/run.sh build                    build every target
#   fuzz/run.sh smoke [SECONDS]          each target SECONDS (default 30), two
#                                        at a time: the committed corpus
#                                        replayed, then fuzzing; fails on any
#                                        crash, timeout or out-of-memory
#   fuzz/run.sh run TARGET [ARGS...]     one target, libFuzzer's ARGS (e.g.
#                                        -max_total_time=900 -jobs=2), its
#                                        corpus grown in target/fuzz/corpus/
#   fuzz/run.sh merge TARGET             minimizes the committed and the
#                                        grown corpus into fuzz/corpus/TARGET
#                                        (to commit)
#
# Targets: wire sasl config asciicast. Needs a C++ compiler (libfuzzer-sys
# builds libFuzzer). Artifacts live under ${CARGO_TARGET_DIR:-target}/fuzz.
# The smoke run builds with the `smoke` profile, the others with `release`;
# FUZZ_PROFILE=NAME overrides both.
set -euo pipefail
FUZZ=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$FUZZ")
TARGETS=(wire sasl config asciicast)
OUT=${CARGO_TARGET_DIR:-$ROOT/target}/fuzz
HOST=$(rustc -vV | sed -n 's/^host: //p')
# The smoke profile leaves most dependencies unoptimized: minutes less on
# CI's 2 cores (Cargo.toml).
PROFILE=${FUZZ_PROFILE:-release}
[[ ${1:-} == smoke ]] && PROFILE=${FUZZ_PROFILE:-smoke}
BIN=$OUT/$HOST/$PROFILE

# cargo-fuzz's flags for `--sanitizer none` (all stable): SanitizerCoverage
# with inline 8-bit counters and a PC table (libFuzzer's coverage), compare
# tracing (to solve magic values), stack depth; `--cfg fuzzing`. `--target`
# keeps them off build scripts and proc macros. Not --locked: a dependency
# jitd gains must not fail CI here first (fuzz/Cargo.lock follows, and keeps
# the versions it has).
build() {
    RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-sanitizer-coverage-stack-depth" \
        CARGO_TARGET_DIR=$OUT cargo build --manifest-path "$FUZZ/Cargo.toml" \
        --profile "$PROFILE" --target "$HOST" --bins
}

# libFuzzer's options for every run: a hang is a failure after 10 s, and
# inputs up to 4 KiB (pam_jit's messages and the handshake are under 1 KiB).
options() {
    local target=$1
    echo "-timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1"
    [[ -f $FUZZ/dict/$target.dict ]] && echo "-dict=$FUZZ/dict/$target.dict"
    return 0
}

# One target for $2 seconds into log $3: the committed corpus first (every
# input in it is run), new inputs in a scratch corpus.
smoke_one() {
    local target=$1 seconds=$2 log=$3 scratch
    scratch=$(mktemp -d)
    local status=0
    # shellcheck disable=SC2046
    (cd "$scratch" && TMPDIR=$scratch "$BIN/$target" $(options "$target") \
        -max_total_time="$seconds" -artifact_prefix="$scratch/" \
        "$scratch" "$FUZZ/corpus/$target") >"$log" 2>&1 || status=$?
    if ((status)); then
        for artifact in "$scratch"/crash-* "$scratch"/timeout-* "$scratch"/oom-* "$scratch"/leak-*; do
            [[ -f $artifact ]] || continue
            echo "$target: $(basename "$artifact") (base64): $(base64 -w0 "$artifact")" >>"$log"
        done
    fi
    rm -rf "$scratch"
    return "$status"
}

# The last status line of a libFuzzer log: executions, coverage, speed.
summary() {
    local log=$1
    local line execs
    line=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "runs ${execs:-?}, last: ${line:-none}"
}

smoke() {
    local seconds=${1:-30} failed=() logs pids=() t
    logs=$(mktemp -d)
    local start=$SECONDS
    build
    echo "fuzz smoke: built in $((SECONDS - start))s; ${seconds}s per target, two at a time"
    for t in "${TARGETS[@]}"; do
        smoke_one "$t" "$seconds" "$logs/$t.log" &
        pids+=($!)
        if ((${#pids[@]} == 2)); then
            wait "${pids[0]}" || true
            pids=("${pids[1]}")
        fi
    done
    wait || true
    for t in "${TARGETS[@]}"; do
        if grep -qE '^==[0-9]+== ERROR: libFuzzer|^SUMMARY: libFuzzer|panicked at|deadly signal|^(crash|timeout|oom)-' "$logs/$t.log" \
            || ! grep -q '^Done [0-9]* runs' "$logs/$t.log"; then
            failed+=("$t")
            echo "fuzz $t: FAILED; its log:"
            tail -n 60 "$logs/$t.log"
        else
            echo "fuzz $t: ok, $(summary "$logs/$t.log")"
        fi
    done
    rm -rf "$logs"
    echo "fuzz smoke: $((SECONDS - start))s in all (build included)"
    if ((${#failed[@]})); then
        echo "fuzz smoke: FAILED: ${failed[*]}" >&2
        return 1
    fi
}

run() {
    local target=$1
    shift
    build
    mkdir -p "$OUT/corpus/$target" "$OUT/artifacts/$target"
    cd "$OUT/artifacts/$target"
    # shellcheck disable=SC2046
    TMPDIR=$OUT/artifacts/$target exec "$BIN/$target" $(options "$target") \
        -artifact_prefix="$OUT/artifacts/$target/" "$@" \
        "$OUT/corpus/$target" "$FUZZ/corpus/$target"
}

merge() {
    local target=$1 merged f name
    build
    merged=$(mktemp -d)
    # The smallest set of inputs with every feature of both (libFuzzer's
    # set cover), named by their SHA-1.
    # shellcheck disable=SC2046
    "$BIN/$target" $(options "$target") -set_cover_merge=1 "$merged" \
        "$FUZZ/corpus/$target" "$OUT/corpus/$target"
    # Named inputs (seeds, regression-*) keep their names, and stay.
    for f in "$FUZZ/corpus/$target"/*; do
        name=$(basename "$f")
        [[ $name =~ ^[0-9a-f]{40}$ ]] && continue
        rm -f "$merged/$(sha1sum <"$f" | cut -c1-40)"
        cp "$f" "$merged/$name"
    done
    rm -rf "$FUZZ/corpus/$target"
    mv "$merged" "$FUZZ/corpus/$target"
    chmod 755 "$FUZZ/corpus/$target"
    echo "fuzz/corpus/$target: $(find "$FUZZ/corpus/$target" -type f | wc -l) inputs"
}

case ${1:-} in
    build) build ;;
    smoke) smoke "${2:-30}" ;;
    run) [[ -n ${2:-} ]] || { echo "usage: $0 run TARGET [LIBFUZZER-ARGS...]" >&2; exit 2; }; run "${@:2}" ;;
    merge) [[ -n ${2:-} ]] || { echo "usage: $0 merge TARGET" >&2; exit 2; }; merge "$2" ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2 ;;
esac
