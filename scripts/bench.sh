#!/bin/bash
# Benchmarks jitd on a private bus with throw-away users (see sandbox.sh) and
# writes BENCHMARKS.md. Run as root:   sudo bash scripts/bench.sh
#
# Environment: CARGO_TARGET_DIR (where release binaries are built),
# BENCH_MILLION=0 to skip the 1,000,000-grant size, BENCH_CALLS (default 20000),
# BENCH_ONLY=pam, session, notify, accounts, vendors, siem, denied, scan, reports, oncall or policy to rerun only that part (keeping the other results;
# its report goes to bench/results/BENCHMARKS.md, not over BENCHMARKS.md),
# BENCH_SESSION_MB (default 200): the text output of the recorder benchmark,
# BENCH_SESSION_ROUNDS (default 9): its interleaved rounds of bare, script and jit-session,
# BENCH_ACCOUNTS (default 100): managed accounts in the custody benchmark,
# BENCH_VENDORS (default 100): vendors ending together,
# BENCH_SIEM_EVENTS (default 200000): audit events forwarded to rsyslog,
# BENCH_SCAN_USERS (default 500): users on the host the standing-privilege scan reads,
# BENCH_REPORT_ROWS (default 1000000): audit rows of the reports' month of history.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/sandbox.sh"

if [[ "${JIT_SANDBOX:-}" != 1 ]]; then
    [[ $EUID -eq 0 ]] || { echo "run as root: sudo bash scripts/bench.sh" >&2; exit 2; }
    "$ROOT/scripts/install-deps.sh"
    (cd "$ROOT" && cargo build --quiet --release -p jitd -p jit-bench -p pam_jit -p jit-session -p jit-deliver)
fi
sandbox_enter "$@"
# Session cgroups of this run's jitd go under a directory of their own, removed at the end.
CGROUP2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
SESSION_CGROUPS="${CGROUP2:-/nonexistent}/jit-bench-$$"
trap '! declare -F restore_cgroup_mode >/dev/null || restore_cgroup_mode; sandbox_cleanup; find "$SESSION_CGROUPS" -depth -type d -delete 2>/dev/null || true' EXIT
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
RESULTS="$ROOT/bench/results"
CALLS=${BENCH_CALLS:-20000}
[[ -n "${BENCH_ONLY:-}" ]] || rm -rf "$RESULTS"
mkdir -p "$RESULTS"
log() { printf '== %s\n' "$*" >&2; }

sandbox_bus "$ROOT"
CONFIG="$SANDBOX_DIR/jitd.toml"
# The shipped policy, minus the off-hours factor so results do not depend on the time of day.
sed -e 's/^off_hours *= *10/off_hours = 0/' -e "s|^# cgroup = .*|cgroup = \"$SESSION_CGROUPS\"|" \
    "$ROOT/packaging/jitd.toml" >"$CONFIG"
# Break-glass on "logs" for admins, without a rate limit (the benchmark takes hundreds).
sed -i -e 's/^rate_limit *= *3 /rate_limit = 1000000 /' \
    -e '/^name = "logs"/a break_glass = ["group:admins"]' "$CONFIG"
# The shipped per-user call limits, kept for the flood measurement (bench_pam);
# lifted for everything else (the benchmarks make hundreds of calls a second as one user).
LIMITED_CONFIG="$SANDBOX_DIR/jitd-limited.toml"
cp "$CONFIG" "$LIMITED_CONFIG"
sed -i -e 's/^calls_per_second *= *10 /calls_per_second = 1000000 /' \
    -e 's/^call_burst *= *50 /call_burst       = 1000000 /' \
    -e 's/^pending_per_user *= *5 /pending_per_user = 1000000 /' "$CONFIG"
grep -q '^calls_per_second = 1000000' "$CONFIG" || { echo "could not lift the call limits in $CONFIG" >&2; exit 1; }
grep -q '^pending_per_user = 1000000' "$CONFIG" || { echo "could not lift pending_per_user in $CONFIG" >&2; exit 1; }
grep -q '^off_hours = 0' "$CONFIG" || { echo "could not set off_hours = 0 in $CONFIG" >&2; exit 1; }
grep -q '^rate_limit = 1000000' "$CONFIG" || { echo "could not lift rate_limit in $CONFIG" >&2; exit 1; }
"$BIN/jitd" --check-config "$CONFIG" >&2

JITD_PID=
start_jitd() {  # state dir [config]; records startup time in ms. JITD_OWN_NET=1: in a network namespace of its own
    local t0=$EPOCHREALTIME wrap=()
    [[ "${JITD_OWN_NET:-}" != 1 ]] || wrap=(unshare --net -- sh -c 'ip link set lo up && exec "$0" "$@"')
    JITD_LOG=warn "${wrap[@]}" "$BIN/jitd" --config "${2:-$CONFIG}" --state-dir "$1" --runtime-dir "$SANDBOX_DIR/run" \
        2>>"$SANDBOX_DIR/jitd.log" &
    JITD_PID=$!
    SANDBOX_PIDS+=("$JITD_PID")
    "$BIN/jit-bench" wait-ready --timeout 300
    STARTUP_MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
}
stop_jitd() {
    kill "$JITD_PID"
    wait "$JITD_PID" || true
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$JITD_PID/status"; }
seed() { "$BIN/jit-bench" seed "$@"; }

machine_json() {
{
    echo "{\"nproc\": $(nproc), \"cpu\": \"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)\","
    echo " \"kernel\": \"$(uname -r)\", \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo " \"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)\","
    echo " \"dbus\": \"$(dbus-daemon --version | head -1)\", \"hyperfine\": \"$(hyperfine --version)\","
    echo " \"cgroup2\": \"$(awk '$9 == "cgroup2" { print $5 " (" $11 ")"; exit }' /proc/self/mountinfo)\"}"
} >"$RESULTS/machine.json"
}

bench_jitd() {
machine_json

# --- Empty database: RSS baseline, and the whole-process request (hyperfine) ---
log "empty database: RSS baseline, jitctl request vs busctl Ping"
start_jitd "$SANDBOX_DIR/empty"
sleep 1
echo "{\"grants\": 0, \"rss_kb\": $(rss_kb), \"startup_ms\": $STARTUP_MS}" >"$RESULTS/rss-empty.json"
# Each jitctl run must be auto-approved; --prepare revokes the grant the previous run got
# (a holder of an active grant gets AlreadyActive). hyperfine aborts on any failed run.
hyperfine -N --warmup 5 --runs 200 --style basic \
    --prepare "$BIN/jit-bench revoke-all" \
    --export-json "$RESULTS/hyperfine.json" \
    -n "jitctl request logs" "$AS_ALICE $BIN/jitctl request logs --for 1m --reason bench" \
    -n "busctl Ping" "$AS_ALICE busctl --address=$DBUS_SYSTEM_BUS_ADDRESS call org.jit.Daemon1 /org/jit/Daemon1 org.freedesktop.DBus.Peer Ping" \
    >&2
# Every timed run went through the auto route and was granted.
$AS_ALICE "$BIN/jitctl" list --all --json >"$RESULTS/hyperfine-requests.json"
stop_jitd

# --- CheckGrant latency and throughput at growing database sizes ---
run_size() {  # name grants
    local name=$1 grants=$2
    start_jitd "$SANDBOX_DIR/$name"
    local rss_ready; rss_ready=$(rss_kb)
    log "$name: latency ($CALLS calls)"
    "$BIN/jit-bench" latency --calls "$CALLS" --holders "$grants" --label "$name" >"$RESULTS/latency-$name.json"
    log "$name: throughput (32 clients)"
    "$BIN/jit-bench" throughput --clients 32 --secs 5 --holders "$grants" >"$RESULTS/throughput-$name.json"
    echo "{\"grants\": $grants, \"rss_kb\": $rss_ready, \"rss_after_kb\": $(rss_kb), \"startup_ms\": $STARTUP_MS}" \
        >"$RESULTS/rss-$name.json"
    stop_jitd
}

log "seeding 1,000 grants"
seed --state-dir "$SANDBOX_DIR/g1k" --grants 1000 --audit 2000 >"$RESULTS/seed-g1k.json"
run_size g1k 1000

log "seeding 100,000 grants and 1,000,000 audit rows"
seed --state-dir "$SANDBOX_DIR/g100k" --grants 100000 --audit 1000000 >"$RESULTS/seed-g100k.json"
run_size g100k 100000

if [[ "${BENCH_MILLION:-1}" != 0 ]]; then
    log "adding 900,000 grants (1,000,000 in all)"
    seed --state-dir "$SANDBOX_DIR/g100k" --grants 900000 --uid-base 1100000 >"$RESULTS/seed-g1m.json"
    mv "$SANDBOX_DIR/g100k" "$SANDBOX_DIR/g1m"
    run_size g1m 1000000
fi

# --- Expiry precision: 1,000 grants expiring in the same second ---
# jitd schedules on the boot clock from whole wall seconds, so the sub-second
# phase at which it loads a grant matters: run once early and once late in a second.
for phase in 0.05 0.85; do
    name="expiry-$phase"
    expires_at=$(( $(date +%s) + 12 ))
    seed --state-dir "$SANDBOX_DIR/$name" --grants 1000 --expires-at "$expires_at" --uid-base 3000000 >/dev/null
    "$BIN/jit-bench" sleep-to-phase "$phase"
    log "$name: 1,000 grants expiring at $expires_at (jitd started at phase $phase)"
    start_jitd "$SANDBOX_DIR/$name"
    rm -f "$SANDBOX_DIR/ready"
    "$BIN/jit-bench" expiry --count 1000 --expires-at "$expires_at" --ready-file "$SANDBOX_DIR/ready" \
        >"$RESULTS/$name.json" &
    watcher=$!
    for _ in $(seq 200); do [[ -e "$SANDBOX_DIR/ready" ]] && break; sleep 0.05; done
    (( $(date +%s) < expires_at )) || { echo "setup took too long: grants expired before the watcher was ready" >&2; exit 1; }
    wait "$watcher"
    stop_jitd
done

}

# --- pam_jit: account checks through libpam, sudo, concurrency ---
# /etc/pam.d/sudo as `pam-auth-update --enable jit jit-session` makes the stack: Debian's sudo file
# with common-account and common-session-noninteractive as the profile rewrites them
# (pam-auth-update runs on copies, in a mount namespace of its own).
profile_stack() {  # pam.d (the bench's copy) module args
    local pamd=$1 module=$2 args=$3 work="$SANDBOX_DIR/pam-profile"
    mkdir -p "$work/configs" "$work/state" "$work/debconf"
    cp -a /usr/share/pam-configs/. "$work/configs/"
    cp -a /var/lib/pam/. "$work/state/" 2>/dev/null || true
    cp -a /var/cache/debconf/. "$work/debconf/"
    local profile
    for profile in jit jit-session; do
        sed "s|pam_jit.so resource=sudo|$module resource=logs $args|" "$ROOT/packaging/pam/$profile" >"$work/configs/$profile"
    done
    cp -a "$pamd" "$work/pam.d"
    unshare --mount --propagation private sh -c "mount --bind '$work/pam.d' /etc/pam.d &&
        mount --bind '$work/configs' /usr/share/pam-configs && mount --bind '$work/state' /var/lib/pam &&
        mount --bind '$work/debconf' /var/cache/debconf &&
        DEBIAN_FRONTEND=noninteractive pam-auth-update --enable jit jit-session"
    grep -q "$module" "$work/pam.d/common-account" || { echo "pam-auth-update did not add the gate" >&2; exit 1; }
    cp "$work/pam.d/common-account" "$pamd/common-account-jit"
    cp "$work/pam.d/common-session-noninteractive" "$pamd/common-session-noninteractive-jit"
    sed -e 's/^@include common-account$/@include common-account-jit/' \
        -e 's/^@include common-session-noninteractive$/@include common-session-noninteractive-jit/' \
        "$pamd/sudo" >"$pamd/sudo.profile"
    mv "$pamd/sudo.profile" "$pamd/sudo"
}

# The machine's cgroup2 options, once bench_pam has changed them; restored at
# the end of the rounds, and at exit whatever happened.
CGROUP2_OPTIONS=
restore_cgroup_mode() {
    [[ -n "${CGROUP2_OPTIONS:-}" ]] || return 0
    mount --options-source=disable -o "remount,$CGROUP2_OPTIONS" "$CGROUP2" \
        || log "could not restore $CGROUP2's options ($CGROUP2_OPTIONS)"
    CGROUP2_OPTIONS=
}

# The cgroup2 mount with or without favordynmods (a remount: the option list given
# replaces the mount's, so the other options are kept).
cgroup_mode() {  # favordynmods | default
    local opts
    opts=$(awk '$9 == "cgroup2" { print $11; exit }' /proc/self/mountinfo | tr , '\n' | grep -v '^favordynmods$' | paste -sd,)
    [[ $1 == favordynmods ]] && opts="$opts,favordynmods"
    mount --options-source=disable -o "remount,$opts" "$CGROUP2"
}

bench_pam() {
    log "pam_jit: in-process account checks, 64 concurrent, sudo -n true"
    local pamd="$SANDBOX_DIR/pam.d" module="$BIN/libpam_jit.so"
    local bus="socket=$SANDBOX_DIR/run/pam.socket bus=unix:path=$SANDBOX_DIR/bus.socket"
    cp -a /etc/pam.d "$pamd"
    echo "account required $module resource=logs $bus" >"$pamd/jit-bench"
    echo "account required pam_permit.so" >"$pamd/jit-bench-permit"
    printf 'account required %s resource=logs %s\nsession required %s resource=logs %s\n' \
        "$module" "$bus" "$module" "$bus" >"$pamd/jit-bench-session"
    printf 'account required pam_permit.so\nsession required pam_permit.so\n' >"$pamd/jit-bench-session-permit"
    cp "$pamd/sudo" "$pamd/sudo-stock"
    cp "$pamd/sudo" "$pamd/sudo-lines"
    printf 'account required %s resource=logs %s\nsession required %s resource=logs %s\n' \
        "$module" "$bus" "$module" "$bus" >>"$pamd/sudo-lines"
    profile_stack "$pamd" "$module" "$bus"
    mount --bind "$pamd" /etc/pam.d
    # alice: the README's hand-written lines (account + session); bob: the stack
    # pam-auth-update writes (service sudo); mike: Debian's stock stack. All three
    # run sudo as root.
    printf '%s\n' 'Defaults !lecture' 'Defaults:alice pam_service=sudo-lines' \
        'Defaults:mike pam_service=sudo-stock' 'alice ALL=(ALL) NOPASSWD: ALL' \
        'bob ALL=(ALL) NOPASSWD: ALL' 'mike ALL=(ALL) NOPASSWD: ALL' >"$SANDBOX_DIR/sudoers"
    chmod 0440 "$SANDBOX_DIR/sudoers"
    mount --bind "$SANDBOX_DIR/sudoers" /etc/sudoers
    start_jitd "$SANDBOX_DIR/pam"
    $AS_ALICE "$BIN/jitctl" request logs --for 50m --reason bench >/dev/null
    $AS_BOB "$BIN/jitctl" request logs --for 50m --reason bench >/dev/null
    "$BIN/jit-bench" fresh-connections --bus "$SANDBOX_DIR/bus.socket" --socket "$SANDBOX_DIR/run/pam.socket" \
        --uid "$(id -u alice)" --resource logs \
        >"$RESULTS/pam-fresh.json"
    "$BIN/jit-bench" pam --service jit-bench --baseline jit-bench-permit --user alice --calls 5000 \
        >"$RESULTS/pam.json"
    "$BIN/jit-bench" pam-concurrent --service jit-bench --user alice --threads 64 --secs 5 \
        >"$RESULTS/pam-concurrent.json"
    # Twelve short rounds rather than one long one: hyperfine runs each command's
    # runs back to back, so a load change on the machine would land on one of them.
    # Each round starts with the next command, so that none is always first. Six
    # rounds on each cgroup2 mount mode, alternating; the machine's mode is restored.
    rm -f "$RESULTS"/sudo-*.json "$RESULTS"/fork-*.json
    local commands=(
        -n "sudo -n true, pam_jit in the stack" "$AS_ALICE sudo -n true"
        -n "sudo -n true, pam-auth-update profile" "$AS_BOB sudo -n true"
        -n "sudo -n true, stock stack" "$AS_MIKE sudo -n true"
    )
    local round first mode
    CGROUP2_OPTIONS=$(awk '$9 == "cgroup2" { print $11; exit }' /proc/self/mountinfo)
    for round in $(seq 12); do
        first=$(( (round - 1) % 3 * 3 ))
        mode=$([[ $((round % 2)) == 1 ]] && echo default || echo favordynmods)
        cgroup_mode "$mode" || { log "cannot remount cgroup2; rounds on the machine's mode"; mode=machine; }
        hyperfine -N --warmup 3 --runs 20 --style none --export-json "$RESULTS/sudo-$mode-$round.json" \
            "${commands[@]:first}" "${commands[@]:0:first}" >&2
        # What the mode costs every process on the host, in the same round.
        "$BIN/jit-bench" fork-exit --runs 1000 >"$RESULTS/fork-$mode-$round.json"
    done
    restore_cgroup_mode
    # W2: from the break-glass command to a usable sudo, against the same with an
    # auto-approved request. --prepare ends the previous run's grant.
    local then_sudo="$AS_ALICE sudo -n true"
    hyperfine -N --warmup 5 --runs 100 --style basic --prepare "$BIN/jit-bench revoke-all" \
        --export-json "$RESULTS/break-glass.json" \
        -n "break-glass, then sudo" \
        "sh -c '$AS_ALICE $BIN/jitctl break-glass logs --for 10m --reason bench >/dev/null && $then_sudo'" \
        -n "request (auto route), then sudo" \
        "sh -c '$AS_ALICE $BIN/jitctl request logs --for 10m --reason bench >/dev/null && $then_sudo'" >&2
    # Last (alice holds the auto-approved grant of the last run above): every
    # session it opens stays open until it exits (the sessions of one process
    # end with it), and jitd then records 2,000 ends.
    "$BIN/jit-bench" pam --service jit-bench-session --baseline jit-bench-session-permit --user alice \
        --calls 2000 --session >"$RESULTS/pam-session.json"
    echo "{\"module_bytes\": $(stat -c %s "$module")}" >"$RESULTS/pam-module.json"
    stop_jitd
    bench_flood
}

# T30: alice's sudo while another user (bob, who may request sudo) floods jitd with
# requests as fast as it answers, against the same without the flood, alternating;
# jitd with the shipped per-user call limits.
bench_flood() {
    log "sudo under a flood of requests from other users"
    start_jitd "$SANDBOX_DIR/pam" "$LIMITED_CONFIG"
    rm -f "$RESULTS"/flood-*.json
    local round
    for round in 1 2 3; do
        hyperfine -N --warmup 3 --runs 60 --style none --export-json "$RESULTS/flood-quiet-$round.json" \
            -n "sudo -n true, quiet" "$AS_ALICE sudo -n true" >&2
        $AS_BOB "$BIN/jit-bench" flood --resource sudo --secs 8 >"$RESULTS/flood-calls-bob-$round.json" &
        sleep 1
        hyperfine -N --warmup 3 --runs 60 --style none --export-json "$RESULTS/flood-loaded-$round.json" \
            -n "sudo -n true, flood" "$AS_ALICE sudo -n true" >&2
        wait $!
    done
    stop_jitd
}

# --- jit-session: the recorder against script, asciinema, tlog and a bare terminal ---
# One session-throughput result from several single-run ones: every run, and the
# median of each measure.
merge_rounds() {
    jq -s '(map(.all) | add) as $all
        | .[0] + {all: $all, runs: ($all | length)}
        + (["cpu_s", "maxrss_kb", "recording_bytes", "terminal_bytes", "wall_s"]
           | map({(.): ([$all[][.]] | sort | .[length / 2 | floor])}) | add)' "$@"
}

bench_session() {
    local mb=${BENCH_SESSION_MB:-200} dir="$SANDBOX_DIR/session"
    mkdir -p "$dir"
    log "jit-session: ${mb} MB of text through each recorder inside an outer PTY"
    { base64 /dev/urandom || true; } | head -c "${mb}M" >"$dir/output.txt"  # base64 dies of SIGPIPE
    local n; n=$(stat -c %s "$dir/output.txt")
    cat "$dir/output.txt" >/dev/null  # in the page cache for every run
    # tlog-rec insists on a utmp record: give it a private /run (this namespace only).
    mount -t tmpfs -o mode=0755 jit-bench-run /run
    : >/run/utmp
    local cat_cmd="cat $dir/output.txt" tp="$BIN/jit-bench session-throughput --output-bytes $n"
    # bare, script and jit-session (the targets' terms) in interleaved rounds, so that a
    # change of load on the machine lands on all three alike; medians over the rounds (a run's
    # wall time varies by +-10% here: nine rounds keep the medians' ratios within a few percent).
    local round
    rm -f "$dir"/bare-*.json "$dir"/script-*.json "$dir"/jit-*.json
    for round in $(seq "${BENCH_SESSION_ROUNDS:-9}"); do
        $tp --runs 1 --label bare -- cat "$dir/output.txt" >"$dir/bare-$round.json"
        $tp --runs 1 --label script --recording "$dir/script.log" -- \
            script -q -c "$cat_cmd" "$dir/script.log" >"$dir/script-$round.json"
        env -u SUDO_UID $tp --runs 1 --label jit-session --recording "$dir/jit.cast" -- \
            "$BIN/jit-session" --standalone-record "$dir/jit.cast" -- cat "$dir/output.txt" \
            >"$dir/jit-$round.json"
        rm -f "$dir/jit.cast"
    done
    merge_rounds "$dir"/bare-*.json >"$RESULTS/session-bare.json"
    merge_rounds "$dir"/script-*.json >"$RESULTS/session-script.json"
    merge_rounds "$dir"/jit-*.json >"$RESULTS/session-jit.json"
    # The slow references, 3 runs each.
    ASCIINEMA_CONFIG_HOME="$dir/asciinema-config" $tp --runs 3 --label asciinema --recording "$dir/asciinema.cast" -- \
        asciinema rec -q -c "$cat_cmd" "$dir/asciinema.cast" >"$RESULTS/session-asciinema.json"
    if command -v tlog-rec >/dev/null; then
        # The default rate limit (16 KB/s, "pass") would leave most of the output unrecorded.
        $tp --runs 3 --label tlog --recording "$dir/tlog.json" -- tlog-rec -w file -o "$dir/tlog.json" \
            --limit-rate=1000000000000 --limit-burst=1000000000000 cat "$dir/output.txt" \
            >"$RESULTS/session-tlog.json"
    else
        echo '{"label": "tlog", "unavailable": "tlog-rec is not installed"}' >"$RESULTS/session-tlog.json"
    fi
    log "jit-session: keystroke-to-echo latency (cat in the session)"
    local lat="$BIN/jit-bench session-latency --samples 3000"
    {
        $lat --label "bare PTY" -- cat
        rm -f "$dir/latency.log"; $lat --label script -- script -q -c cat "$dir/latency.log"
        rm -f "$dir/latency.cast"; env -u SUDO_UID $lat --label jit-session -- \
            "$BIN/jit-session" --standalone-record "$dir/latency.cast" -- cat
    } | jq -s . >"$RESULTS/session-latency.json"
    echo "{\"mb\": $mb, \"output_bytes\": $n}" >"$RESULTS/session-workload.json"
    rm -rf "$dir"
}

# --- Notifications: request to approver's webhook, against the request alone ---
bench_notify() {
    local port=18787 base=$CONFIG
    log "notifications: request latency without notifications (baseline)"
    start_jitd "$SANDBOX_DIR/notify-off"
    $AS_ALICE "$BIN/jit-bench" notify --mode off --port "$port" >"$RESULTS/notify-off.json"
    stop_jitd
    # ssh needs an owner's approval; its owners hear it through a JSON webhook served by jit-bench.
    local CONFIG="$SANDBOX_DIR/jitd-notify.toml"
    sed 's/^owner *= *\["email"\]/owner = ["hook:bench"]/' "$base" >"$CONFIG"
    grep -q '^owner = \["hook:bench"\]' "$CONFIG" || { echo "could not set notify.owner in $CONFIG" >&2; exit 1; }
    printf '\n[notify.hooks.bench]\nkind = "json"\nurl = "http://127.0.0.1:%s/bench"\n' "$port" >>"$CONFIG"
    "$BIN/jitd" --check-config "$CONFIG" >&2
    log "notifications: request to approver notified (local webhook)"
    start_jitd "$SANDBOX_DIR/notify-on"
    $AS_ALICE "$BIN/jit-bench" notify --mode live --port "$port" >"$RESULTS/notify-live.json"
    log "notifications: request latency with a hung webhook"
    $AS_ALICE "$BIN/jit-bench" notify --mode hung --port "$port" >"$RESULTS/notify-hung.json"
    stop_jitd
}

# --- Managed accounts: custody at start, checkout and check-in, N grants ending together ---
bench_accounts() {
    local n=${BENCH_ACCOUNTS:-100} dir="$SANDBOX_DIR/accounts" i
    log "managed accounts: $n accounts on an overlay of /etc (shadow-utils replaces /etc/shadow)"
    mkdir -p "$dir/upper" "$dir/work"
    mount -t overlay jit-bench -o "lowerdir=/etc,upperdir=$dir/upper,workdir=$dir/work" /etc
    # The overlay hides the sandbox's bind-mounted account files: copy them in.
    cat "$SANDBOX_DIR/passwd" >/etc/passwd
    cat "$SANDBOX_DIR/group" >/etc/group
    cat "$SANDBOX_DIR/shadow" >/etc/shadow
    useradd --no-create-home --shell /usr/sbin/nologin jbenchplain
    local config="$SANDBOX_DIR/jitd-accounts.toml"
    cp "$CONFIG" "$config"
    for i in $(seq -f '%03g' 0 $((n - 1))); do
        useradd --no-create-home --shell /bin/sh "jbench$i"
        printf '\n[[resource]]\nname = "jbench%s"\nprivileged = true\neligible = ["user:root"]\nbreak_glass = ["user:root"]\n' "$i" >>"$config"
        printf '\n[[account]]\nname = "jbench%s"\nresource = "jbench%s"\n' "$i" "$i" >>"$config"
    done
    "$BIN/jitd" --check-config "$config" >&2
    # Start-up without accounts, then with n to take into custody, same run.
    start_jitd "$dir/state-none" "$CONFIG"
    local start_none=$STARTUP_MS
    stop_jitd
    start_jitd "$dir/state" "$config"
    local start_custody=$STARTUP_MS
    log "managed accounts: checkout and check-in against chpasswd -e; $n grants expiring together"
    "$BIN/jit-bench" custody --db "$dir/state/jit.db" --accounts "$n" --plain jbenchplain \
        | jq --argjson none "$start_none" --argjson custody "$start_custody" \
            '. + {startup_ms_without: $none, startup_ms_custody: $custody}' >"$RESULTS/accounts.json"
    stop_jitd
    bench_account_session "$dir"
    # The persistence snapshot of a privileged grant, on this host's files
    # plus 4,500 units in the overlay: at least 5,000 in the watched set.
    for i in $(seq -w 1 4500); do echo '[Service]' >"/etc/systemd/system/jit-bench-$i.service"; done
    log "managed accounts: the persistence snapshot"
    "$BIN/jit-bench" snapshot --runs 9 >"$RESULTS/snapshot.json"
    umount -l /etc
}

# W3: from the grant to a usable recorded session as a managed account
# (`jitctl run ID --as ACCOUNT`, which waits for the checkout), against the same
# session as root under a grant of a privileged resource without an account, same
# run. Both grants are break-glass (active at once: what follows an approval is
# the same code). /etc is bench_accounts' overlay: the stacks and sudoers go in it.
bench_account_session() {
    local dir=$1 module="$BIN/libpam_jit.so"
    local bus="socket=$SANDBOX_DIR/run/pam.socket bus=unix:path=$SANDBOX_DIR/bus.socket"
    log "managed accounts: grant to a recorded session as the account, against as root"
    useradd --no-create-home --shell /bin/sh jbenchdba
    cp /etc/pam.d/sudo "$dir/sudo-stock"
    local resource service
    for resource in benchroot benchdba; do
        service=$([[ $resource == benchroot ]] && echo sudo || echo sudo-jbenchdba)
        { cat "$dir/sudo-stock"
          printf 'account required %s resource=%s %s\nsession required %s resource=%s %s\n' \
              "$module" "$resource" "$bus" "$module" "$resource" "$bus"
        } >"/etc/pam.d/$service"
    done
    printf '%s\n' 'Defaults !lecture' 'Defaults>jbenchdba pam_service=sudo-jbenchdba' \
        'root ALL=(ALL:ALL) ALL' '%admins ALL=(root) NOPASSWD: /usr/libexec/jit/jit-session' \
        '%admins ALL=(jbenchdba) NOPASSWD: /usr/libexec/jit/jit-session' >/etc/sudoers
    chmod 0440 /etc/sudoers
    # The recorder where sudoers names it, and the bus where it looks (this namespace only).
    mkdir -p "$dir/libexec/jit" "$dir/libexec.work"
    install -m 0755 "$BIN/jit-session" "$dir/libexec/jit/jit-session"
    mount -t overlay jit-bench-libexec \
        -o "lowerdir=/usr/libexec,upperdir=$dir/libexec,workdir=$dir/libexec.work" /usr/libexec
    mount -t tmpfs -o mode=0755 jit-bench-session-run /run
    mkdir -m 0755 /run/dbus
    ln -s "$SANDBOX_DIR/bus.socket" /run/dbus/system_bus_socket
    local config="$SANDBOX_DIR/jitd-account-session.toml"
    sed "s|^dir = \"/var/log/jit/sessions\"|dir = \"$dir/sessions\"|" "$CONFIG" >"$config"
    grep -q "^dir = \"$dir/sessions\"" "$config" || { echo "could not set [recordings] dir in $config" >&2; exit 1; }
    printf '\n[[resource]]\nname = "%s"\nprivileged = true\neligible = ["group:admins"]\nbreak_glass = ["group:admins"]\n' \
        benchroot benchdba >>"$config"
    printf '\n[[account]]\nname = "jbenchdba"\nresource = "benchdba"\n' >>"$config"
    "$BIN/jitd" --check-config "$config" >&2
    cat >"$dir/grant-then-session" <<SCRIPT
#!/bin/sh
# A break-glass grant of \$1, then a recorded session under it (as account \$2 if given).
set -e
id=\$($BIN/jitctl break-glass "\$1" --for 10m --reason bench --json | jq -r .id)
exec $BIN/jitctl run "\$id" \${2:+--as "\$2"} -- true
SCRIPT
    chmod 0755 "$dir/grant-then-session"
    start_jitd "$dir/state-session" "$config"
    # Each run starts with no grant and the account checked in again.
    hyperfine -N --warmup 5 --runs 60 --style basic \
        --prepare "$BIN/jit-bench revoke-all --settle $dir/state-session/jit.db" \
        --export-json "$RESULTS/account-session.json" \
        -n "grant, then a recorded session as the account" "$AS_ALICE $dir/grant-then-session benchdba jbenchdba" \
        -n "grant, then a recorded session as root" "$AS_ALICE $dir/grant-then-session benchroot" >&2
    # Every run (65 of each) left a recording, half of them as the account.
    "$BIN/jitctl" recordings list --json >"$dir/recordings.json"
    jq -e 'length == 130 and (map(select(.resource == "benchdba")) | length) == 65' "$dir/recordings.json" \
        >/dev/null || { echo "not every session was recorded: $dir/recordings.json" >&2; exit 1; }
    # W4: output to a live watcher (jitctl recordings watch, as root) against the
    # session's own terminal, lines typed into a recorded `cat`.
    log "recorded sessions: output to a live watcher"
    "$BIN/jit-bench" revoke-all --settle "$dir/state-session/jit.db"
    local grant
    grant=$($AS_ALICE "$BIN/jitctl" break-glass benchroot --for 10m --reason bench --json | jq -r .id)
    "$BIN/jit-bench" watch-latency --jitctl "$BIN/jitctl" --samples 200 -- \
        $AS_ALICE "$BIN/jitctl" run "$grant" -- cat >"$RESULTS/watch-latency.json"
    stop_jitd
    umount -l /run /usr/libexec
}

# W4: vendor accounts, with jitd in a network namespace of its own (its nftables
# rules stay off the host's), on overlays of /etc and /home; then what a second
# factor adds to a login.
bench_vendors() {
    local dir="$SANDBOX_DIR/vendors" place
    log "vendor accounts: approval to a usable login against useradd; ${BENCH_VENDORS:-100} ending together"
    for place in etc home; do
        mkdir -p "$dir/$place/upper" "$dir/$place/work"
        mount -t overlay "jit-bench-$place" \
            -o "lowerdir=/$place,upperdir=$dir/$place/upper,workdir=$dir/$place/work" "/$place"
    done
    cat "$SANDBOX_DIR/passwd" >/etc/passwd
    cat "$SANDBOX_DIR/group" >/etc/group
    cat "$SANDBOX_DIR/shadow" >/etc/shadow
    groupadd --system jit-vendors
    ssh-keygen -q -t ed25519 -N '' -C bench -f "$dir/key"
    chmod 0644 "$dir/key.pub"
    local config="$SANDBOX_DIR/jitd-vendors.toml"
    sed 's/^max_failures *= *5 /max_failures  = 1000000 /' "$CONFIG" >"$config"
    grep -q '^max_failures  = 1000000' "$config" || { echo "could not raise max_failures in $config" >&2; exit 1; }
    printf '%s\n' '' '[vendors]' 'sponsors = ["user:alice"]' 'uid_min = 71000' 'uid_max = 72999' \
        '' '[managers]' 'alice = "mike"' '' '[[segment]]' 'name = "db-net"' 'networks = ["10.20.0.0/24"]' \
        'ports = [5432]' '' '[[resource]]' 'name = "vssh"' 'eligible = ["group:admins"]' 'vendors = true' >>"$config"
    "$BIN/jitd" --check-config "$config" >&2
    JITD_OWN_NET=1 start_jitd "$dir/state" "$config"
    "$BIN/jit-bench" vendors --db "$dir/state/jit.db" --jitctl "$BIN/jitctl" --key "$dir/key.pub" \
        --jitd-pid "$JITD_PID" --together "${BENCH_VENDORS:-100}" >"$RESULTS/vendors.json"
    log "second factor: what MfaLogin adds to a login"
    "$BIN/jit-bench" mfa-login --socket "$SANDBOX_DIR/run/pam.socket" >"$RESULTS/mfa-login.json"
    stop_jitd
    # CheckGrant holds vendors back until their egress rules are in place:
    # everyone else's CheckGrant, with [vendors] configured and without.
    log "CheckGrant with [vendors] configured against without, same run"
    local mode cfg
    for mode in off on; do
        seed --state-dir "$dir/check-$mode" --grants 1000 >/dev/null
        cfg=$([[ $mode == on ]] && echo "$config" || echo "$CONFIG")
        JITD_OWN_NET=1 start_jitd "$dir/check-$mode" "$cfg"
        "$BIN/jit-bench" latency --calls "$CALLS" --holders 1000 --label "vendors-$mode" \
            >"$RESULTS/latency-vendors-$mode.json"
        stop_jitd
    done
    umount -l /etc /home
}

# --- The SIEM feed: throughput into rsyslog, commit to receipt, the gate and requests unchanged ---
siem_sink() {  # port: a [siem] section with one TCP sink
    printf '\n[siem]\n[siem.sinks.bench]\ntype = "tcp"\naddress = "127.0.0.1:%s"\n' "$1"
}
bench_siem() {
    local dir="$SANDBOX_DIR/siem" events=${BENCH_SIEM_EVENTS:-200000}
    local tput_port=18601 base_port=18602 sink_port=18603 run="$SANDBOX_DIR/run"
    mkdir -p "$dir/rsyslog"
    printf '%s\n' \
        "global(workDirectory=\"$dir/rsyslog\" maxMessageSize=\"256k\")" \
        'module(load="imptcp")' \
        'template(name="raw" type="string" string="%rawmsg%\n")' \
        "ruleset(name=\"jit\") { action(type=\"omfile\" file=\"$dir/tput.log\" template=\"raw\") }" \
        "ruleset(name=\"direct\") { action(type=\"omfile\" file=\"$dir/base.log\" template=\"raw\") }" \
        "input(type=\"imptcp\" address=\"127.0.0.1\" port=\"$tput_port\" ruleset=\"jit\")" \
        "input(type=\"imptcp\" address=\"127.0.0.1\" port=\"$base_port\" ruleset=\"direct\")" \
        >"$dir/rsyslog/rsyslog.conf"
    rsyslogd -n -f "$dir/rsyslog/rsyslog.conf" -i "$dir/rsyslog/pid" 2>>"$dir/rsyslogd.log" &
    local rsyslog=$!
    SANDBOX_PIDS+=("$rsyslog")
    local deliver=("$BIN/jit-deliver" --socket "$run/deliver.socket" --siem-socket "$run/siem.socket")
    local tput_config="$SANDBOX_DIR/jitd-siem-tput.toml" sink_config="$SANDBOX_DIR/jitd-siem.toml"
    { cat "$CONFIG"; siem_sink "$tput_port"; } >"$tput_config"
    { cat "$CONFIG"; siem_sink "$sink_port"; } >"$sink_config"
    "$BIN/jitd" --check-config "$tput_config" >&2

    log "SIEM feed: $events audit events forwarded to rsyslog over TCP, against rsyslog taking them straight"
    seed --state-dir "$dir/tput" --audit "$events" >/dev/null
    start_jitd "$dir/tput" "$tput_config"
    "$BIN/jit-bench" siem-throughput --file "$dir/tput.log" --count "$events" \
        --baseline-port "$base_port" --baseline-file "$dir/base.log" -- "${deliver[@]}" >"$RESULTS/siem-throughput.json"
    stop_jitd
    kill "$rsyslog"
    wait "$rsyslog" || true

    log "SIEM feed: event commit to receipt (jit-bench is the TCP sink); request reply with and without [siem]"
    start_jitd "$dir/latency" "$sink_config"
    JIT_DELIVER_LOG=warn "${deliver[@]}" 2>>"$dir/deliver.log" &
    local worker=$!
    SANDBOX_PIDS+=("$worker")
    $AS_ALICE "$BIN/jit-bench" siem-latency --port "$sink_port" >"$RESULTS/siem-latency.json"
    stop_jitd
    start_jitd "$dir/request-off"
    $AS_ALICE "$BIN/jit-bench" notify --mode off >"$RESULTS/siem-request-off.json"
    stop_jitd

    log "CheckGrant with a SIEM sink configured against without, same run"
    local mode cfg
    for mode in off on; do
        seed --state-dir "$dir/check-$mode" --grants 1000 >/dev/null
        cfg=$([[ $mode == on ]] && echo "$sink_config" || echo "$CONFIG")
        start_jitd "$dir/check-$mode" "$cfg"
        "$BIN/jit-bench" latency --calls "$CALLS" --holders 1000 --label "siem-$mode" \
            >"$RESULTS/latency-siem-$mode.json"
        stop_jitd
    done
    kill "$worker"
    wait "$worker" || true
}

# Denied access: pam_jit's account check with the record of a denial
# (CheckAccess) against without (CheckGrant), for a holder and for a user
# without a grant, on the private socket; jitd's CPU per call.
bench_denied() {
    local dir="$SANDBOX_DIR/denied"
    log "denied access: CheckAccess against CheckGrant, granted and denied"
    seed --state-dir "$dir" --grants 1000 >/dev/null
    start_jitd "$dir"
    "$BIN/jit-bench" denied --socket "$SANDBOX_DIR/run/pam.socket" --holder 1000000 \
        --denied-uid "$(id -u mike)" --jitd-pid "$JITD_PID" --db "$dir/jit.db" >"$RESULTS/denied.json"
    stop_jitd
}

# The standing-privilege scan (docs/design.md, "Standing-privilege scan") on a
# host of BENCH_SCAN_USERS more users, on overlays of /etc and /root and a /run
# of its own (sshd -T wants /run/sshd): `jitctl scan` against cvtsudoers alone.
bench_scan() {
    local dir="$SANDBOX_DIR/scan" n=${BENCH_SCAN_USERS:-500} place i
    log "standing-privilege scan: $n users, against cvtsudoers alone"
    for place in etc root; do
        mkdir -p "$dir/$place/upper" "$dir/$place/work"
        mount -t overlay "jit-bench-$place" \
            -o "lowerdir=/$place,upperdir=$dir/$place/upper,workdir=$dir/$place/work" "/$place"
    done
    mount -t tmpfs -o mode=0755 jit-bench-scan-run /run
    mkdir -m 0755 /run/sshd
    cat "$SANDBOX_DIR/passwd" >/etc/passwd
    cat "$SANDBOX_DIR/group" >/etc/group
    cat "$SANDBOX_DIR/shadow" >/etc/shadow
    getent group sudo >/dev/null || groupadd sudo
    groupadd jscandev
    for i in $(seq -f '%03g' 0 $((n - 1))); do
        case $((10#$i / 50)) in
            4|5|6|7) useradd -M -N -G jscandev -s /bin/sh "jscan$i" ;;
            8) useradd -M -N -G sudo -s /bin/sh "jscan$i" ;;
            *) useradd -M -N -s /bin/sh "jscan$i" ;;
        esac
    done
    local module="$BIN/libpam_jit.so" bus="socket=$SANDBOX_DIR/run/pam.socket bus=unix:path=$SANDBOX_DIR/bus.socket"
    # The account line before common-account's, as the README's stacks have it
    # (an expired password ends common-account early: T41).
    local line
    for service in sudo sudo-i; do
        line=$(printf 'account required %s resource=sudo exempt=root,jscan000,jscan100 %s' "$module" "$bus")
        sed -i "/^@include common-account/i $line" "/etc/pam.d/$service"
        grep -qF "$line" "/etc/pam.d/$service" || { echo "no @include common-account in /etc/pam.d/$service" >&2; exit 1; }
    done
    printf '%s\n' 'Defaults !lecture' 'root ALL=(ALL:ALL) ALL' '%sudo ALL=(ALL:ALL) ALL' \
        '@includedir /etc/sudoers.d' >/etc/sudoers
    rm -f /etc/sudoers.d/*
    {
        for i in $(seq -f '%03g' 0 99); do echo "jscan$i ALL=(postgres) NOPASSWD: /usr/bin/psql"; done
        echo "User_Alias OPS = $(seq -f 'jscan%03g' 100 149 | paste -sd, -)"
        echo 'OPS ALL=(ALL) ALL'
        echo '%jscandev ALL=(root) /usr/bin/systemctl restart app'
    } >/etc/sudoers.d/teams
    printf '%s\n' 'Defaults:jscan450 !pam_acct_mgmt' 'jscan450 ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/legacy
    chmod 0440 /etc/sudoers /etc/sudoers.d/*
    visudo -cq
    local config="$SANDBOX_DIR/jitd-scan.toml"
    # Scans only when asked: none of jitd's own during the measurement.
    sed 's/^every = "1h" /every = "off"/' "$CONFIG" >"$config"
    grep -q '^every = "off"' "$config" || { echo "could not turn [scan] off in $config" >&2; exit 1; }
    "$BIN/jitd" --check-config "$config" >&2
    start_jitd "$dir/state" "$config"
    "$BIN/jitctl" scan --json >"$dir/first.json"
    jq -e '.errors == []' "$dir/first.json" >/dev/null || { echo "the scan could not read everything: $dir/first.json" >&2; exit 1; }
    hyperfine -N --warmup 3 --runs 30 --style basic --export-json "$RESULTS/scan.json" \
        -n "jitctl scan, $n users" "$BIN/jitctl scan --json" \
        -n "cvtsudoers -f json alone" "cvtsudoers -f json /etc/sudoers" >&2
    jq --argjson users "$n" --argjson rules "$(cat /etc/sudoers.d/* | grep -vc -e '^Defaults' -e '^User_Alias')" \
        '{users: $users, rules: $rules, cvtsudoers_runs: 5, findings: .total, counts: .counts}' \
        "$dir/first.json" >"$RESULTS/scan-meta.json"
    stop_jitd
    umount -l /etc /root /run
}

# --- Reports: each `jitctl report KIND --json` over a month of history ---
# A month of requests on every route with their decisions, grants (some never used, some of
# those revoked for it), sessions, ends and break-glass cases, users denied without a grant
# (coalesced as jitd writes them, alerts, a weekly flood past max_tracked) and an hourly
# standing-privilege scan (jit-bench seed --history, through jitd's store), 1,000,000 audit
# rows; each of the six reports and the HTML page of all six as root, against reading the
# same database without jitd (sqlite3 counting the audit rows) and against `jitctl audit
# verify` (the chain over every row), same run.
bench_reports() {
    local dir="$SANDBOX_DIR/reports" rows=${BENCH_REPORT_ROWS:-1000000} kind
    log "reports: seeding a month of history, $rows audit rows"
    seed --state-dir "$dir" --history --audit "$rows" >"$RESULTS/reports-seed.json"
    start_jitd "$dir"
    local report="$BIN/jitctl report --since 31d" names=("jitctl audit verify (baseline)")
    local cmds=("$BIN/jitctl audit verify --json") runs=() i before cpu=()
    for kind in emergency mtta usage unused denied standing; do
        names+=("jitctl report $kind --json") cmds+=("$report $kind --json")
    done
    names+=("jitctl report --html (all six)") cmds+=("$report --html $dir/report.html")
    for i in "${!names[@]}"; do runs+=(-n "${names[$i]}" "${cmds[$i]}"); done
    log "reports: each report against sqlite3 and audit verify over the same database"
    hyperfine -N --warmup 2 --runs 10 --style basic --export-json "$RESULTS/reports.json" \
        -n "sqlite3 count(*) of the audit rows (baseline)" "sqlite3 $dir/jit.db 'SELECT count(*) FROM audit'" \
        "${runs[@]}" >&2
    # jitd's CPU time (user + system, all threads) per run of each, over 5 runs: what other
    # load on the machine does not change.
    for i in "${!names[@]}"; do
        before=$(awk '{ print $14 + $15 }' "/proc/$JITD_PID/stat")
        for _ in 1 2 3 4 5; do ${cmds[$i]} >/dev/null; done
        cpu+=("$(jq -n --arg name "${names[$i]}" --argjson hz "$(getconf CLK_TCK)" \
            --argjson ticks "$(awk -v b="$before" '{ print $14 + $15 - b }' "/proc/$JITD_PID/stat")" \
            '{($name): ($ticks / $hz / 5)}')")
    done
    jq -s add <<<"${cpu[*]}" >"$RESULTS/reports-cpu.json"
    # What the reports counted, for the record (against what the seeder wrote).
    $report mtta --json | jq '[.routes[] | {route, granted}]' >"$RESULTS/reports-mtta.json"
    for kind in unused denied standing; do $report "$kind" --json >"$dir/$kind.json"; done
    jq -n --slurpfile unused "$dir/unused.json" --slurpfile denied "$dir/denied.json" \
        --slurpfile standing "$dir/standing.json" --argjson page "$(stat -c %s "$dir/report.html")" \
        '$unused[0] as $u | $denied[0] as $d |
         {grants: ([$u.resources[].grants] | add), unused: ([$u.resources[].unused] | add),
          revoked_unused: ([$u.resources[].revoked_unused] | add), denials: $d.total,
          denied_keys: ($d.attempts | length), flagged: ($d.flagged | length),
          overflow_events: $d.overflow.events, scans: ($standing[0].scans | length), page_bytes: $page}' \
        >"$RESULTS/reports-counted.json"
    stop_jitd
}

# --- On-call schedules: a 10,000-shift file read again after a change, the change check per lookup ---
bench_oncall() {
    log "on-call: reloading 10,000 shifts, and the stat on every lookup"
    "$BIN/jit-bench" oncall --dir "$SANDBOX_DIR/oncall" --shifts 10000 >"$RESULTS/oncall.json"
}

bench_policy() {  # policy rules' evaluation: in process, then through jitd; 1,000 rules against none
    local dir="$SANDBOX_DIR/policy" rules_config="$SANDBOX_DIR/jitd-policy.toml" mode cfg
    log "policy: 1,000 rules against none, in process"
    "$BIN/jit-bench" policy --rules 1000 --requests 10000 --rounds 9 >"$RESULTS/policy.json"
    # Every rule names alice and ssh and needs a ticket the requests do not give:
    # each request is looked at by all of them, and goes to its owner as before.
    { cat "$CONFIG"; "$BIN/jit-bench" policy-rules --rules 1000 --user alice --resource ssh; } >"$rules_config"
    "$BIN/jitd" --check-config "$rules_config" >&2
    mkdir -p "$dir"
    log "policy: request replies and CheckGrant through jitd, 1,000 rules against none"
    for mode in off on; do
        cfg=$([[ $mode == on ]] && echo "$rules_config" || echo "$CONFIG")
        start_jitd "$dir/request-$mode" "$cfg"
        $AS_ALICE "$BIN/jit-bench" notify --mode off >"$RESULTS/policy-request-$mode.json"
        stop_jitd
        seed --state-dir "$dir/check-$mode" --grants 1000 >/dev/null
        start_jitd "$dir/check-$mode" "$cfg"
        "$BIN/jit-bench" latency --calls "$CALLS" --holders 1000 --label "policy-$mode" \
            >"$RESULTS/latency-policy-$mode.json"
        stop_jitd
    done
}

AS_ALICE="setpriv --reuid=alice --regid=alice --init-groups"
AS_BOB="setpriv --reuid=bob --regid=bob --init-groups"
AS_MIKE="setpriv --reuid=mike --regid=mike --init-groups"
[[ -e "$RESULTS/machine.json" ]] || machine_json
case "${BENCH_ONLY:-}" in
    "") bench_jitd; bench_pam; bench_session; bench_notify; bench_accounts; bench_vendors; bench_siem; bench_denied; bench_scan; bench_reports; bench_oncall; bench_policy ;;
    pam) bench_pam ;;
    session) bench_session ;;
    notify) bench_notify ;;
    accounts) bench_accounts ;;
    vendors) bench_vendors ;;
    siem) bench_siem ;;
    denied) bench_denied ;;
    scan) bench_scan ;;
    reports) bench_reports ;;
    oncall) bench_oncall ;;
    policy) bench_policy ;;
    *) echo "BENCH_ONLY: pam, session, notify, accounts, vendors, siem, denied, scan, reports, oncall or policy" >&2; exit 2 ;;
esac

"$BIN/jit-bench" report --results "$RESULTS" --command "sudo bash scripts/bench.sh" >"$RESULTS/BENCHMARKS.md"
# A partial run has only its own results (on a new machine, nothing else): it
# must not replace the other sections of BENCHMARKS.md with nothing.
if [[ -z "${BENCH_ONLY:-}" ]]; then
    cp "$RESULTS/BENCHMARKS.md" "$ROOT/BENCHMARKS.md"
    log "wrote $ROOT/BENCHMARKS.md (raw results in $RESULTS)"
else
    log "partial run: its report is $RESULTS/BENCHMARKS.md; copy its section into $ROOT/BENCHMARKS.md"
fi
