#!/bin/bash
# The guided tour of workflows W1 and W2: jitd with its bundled default config
# on a private bus, driven by jitctl as five throw-away users, with real sudo
# gated by pam_jit and recorded by jit-session. Leaves nothing behind.
#
#   scripts/demo.sh              installs what it needs, builds, runs the tour
#   scripts/demo.sh --prebuilt   runs the tour with the debug binaries already built
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/sandbox.sh"

if [[ "${JIT_SANDBOX:-}" != 1 && "${1:-}" != --prebuilt ]]; then
    "$ROOT/scripts/install-deps.sh"
    (cd "$ROOT" && cargo build --quiet -p jitd -p jit-deliver -p jit-session --bins && cargo build --quiet -p pam_jit)
fi
sandbox_enter "$@"
trap sandbox_cleanup EXIT
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"

bold="" dim="" reset=""
if [[ -t 1 ]]; then bold=$(tput bold 2>/dev/null || true) dim=$(tput dim 2>/dev/null || true) reset=$(tput sgr0 2>/dev/null || true); fi
say()  { printf '\n%s== %s%s\n' "$bold" "$*" "$reset"; }
as()   { local who=$1; shift; printf '%s$ %s: jitctl %s%s\n' "$dim" "$who" "$*" "$reset"
         runuser -u "$who" -- env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" "$BIN/jitctl" "$@"; }
request_id() { runuser -u "$1" -- env DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS" "$BIN/jitctl" "${@:2}" --json \
               | sed -n 's/^  "id": \([0-9]*\),$/\1/p'; }

say "Starting a private D-Bus system bus with jit's policy, and jitd with packaging/jitd.toml"
sandbox_gate_sudo "$BIN"
sandbox_bus "$ROOT"
"$BIN/jitd" --check-config "$ROOT/packaging/jitd.toml"
JITD_LOG=warn "$BIN/jitd" --config "$ROOT/packaging/jitd.toml" --state-dir "$SANDBOX_DIR/state" &
SANDBOX_PIDS+=($!)
for _ in $(seq 100); do as alice status >/dev/null 2>&1 && break; sleep 0.05; done
echo "Users: alice, bob (admins: may request; bob is also on call), mike (jit-managers),"
echo "sam (jit-security and jit-audit), oscar (nobody). alice and bob are in jit-gated: sudo lets"
echo "them run the recorder (/usr/libexec/jit/jit-session) and nothing else, and only with a grant."
as alice status

say "1. A low-risk request is approved by policy at once (W1.1-W1.3)"
as alice request logs --for 30m --reason "check yesterday's batch job" --ticket OPS-17

say "2. A privileged production request needs a manager AND security (dual approval)"
id=$(request_id alice request sudo --for 1h --reason "rotate TLS certs on web01" --ticket CHG-42)
as alice show "$id"
say "   alice cannot approve her own request; oscar is not an approver"
as alice approve "$id" || echo "(exit $?)"
as oscar approve "$id" || echo "(exit $?)"
say "   mike approves as manager: still waiting for security"
as mike approve "$id" --comment "change approved in CAB"
say "   sam approves as security: the grant is active, with its expiry"
as sam approve "$id" --comment "ok, watch the session"
as alice list

say "3. alice works as root under her grant: sudo, gated by pam_jit, runs the recorder (W1.6)"
as alice run "$id" -- id
say "   bob holds no sudo grant: pam_jit refuses his sudo, and says what to do instead"
printf '%s$ bob: sudo /usr/libexec/jit/jit-session%s\n' "$dim" "$reset"
runuser -u bob -- sudo -n /usr/libexec/jit/jit-session </dev/null || echo "(exit $?)"
say "   sam (jit-audit) reviews the recording; its SHA-256 is in the audit trail"
as sam recordings list
last_recording() { runuser -u sam -- "$BIN/jitctl" recordings list --json | jq -r ".[-1].$1"; }
rec=$(last_recording id)
as sam recordings verify "$rec"
as sam recordings play "$rec"
say "   changing one byte of the recording is caught"
sed -i 's/(root)/(r00t)/' "$(last_recording path)"
as sam recordings verify "$rec" || echo "(exit $?)"

say "4. Revoking a grant ends its sessions at once (W1.7)"
as alice run "$id" -- sleep 600 &
runner=$!
sleep 2
as sam revoke "$id"
wait "$runner" || echo "(exit $?)"
as sam recordings list

say "5. A short grant expires on its own (W1.7)"
as bob request logs --for 3s --reason "quick look"
sleep 4
as bob list --all

say "6. Break-glass: bob is on call; an emergency grant is active at once (W2)"
id=$(request_id bob break-glass sudo --for 30m --reason "web01 down, nobody answers the pager")
as bob show "$id"
say "   bob justifies it afterwards; a manager and security review it"
as bob justify "$id" --reason "INC-9: disk full on web01, rotated the logs"
as mike review "$id" --verdict justified --comment "matches INC-9"
as sam review "$id" --verdict justified --comment "ok"

say "7. Every step is in the audit trail, HMAC-chained (W1.8); emergency grants are flagged"
as sam audit
as sam audit verify

say "Done. Tearing down the bus, jitd and the throw-away users."
