# Sourced by demo.sh: a throw-away world for jit on this machine.
#
# sandbox_enter re-executes the calling script in a private mount namespace in
# which /etc/passwd, /etc/group and /etc/shadow are bind-mounted copies with
# extra users.
# Nothing is written to the real files, and everything vanishes with the
# namespace, even if the script is killed.

# name:uid:groups (comma-separated)
SANDBOX_USERS=(
    "alice:61001:admins"
    "bob:61002:admins,oncall"
    "mike:61003:jit-managers"
    "sam:61004:jit-security"
    "oscar:61005:"
)
SANDBOX_GROUPS=("admins:61101" "jit-managers:61102" "jit-security:61103" "jit-audit:61104" "oncall:61105")

sandbox_enter() {
    if [[ "${JIT_SANDBOX:-}" != 1 ]]; then
        [[ $EUID -eq 0 ]] || { echo "run as root (it creates a private namespace)" >&2; exit 2; }
        exec env JIT_SANDBOX=1 unshare --mount --propagation private -- "$0" "$@"
    fi
    SANDBOX_DIR=$(mktemp -d /tmp/jit-demo.XXXXXX)
    chmod 755 "$SANDBOX_DIR"
    cp /etc/passwd "$SANDBOX_DIR/passwd"
    cp /etc/group "$SANDBOX_DIR/group"
    install -m 0640 -g shadow /etc/shadow "$SANDBOX_DIR/shadow"
    local entry name gid uid groups g
    for entry in "${SANDBOX_GROUPS[@]}"; do
        name=${entry%%:*} gid=${entry##*:}
        local members=()
        for u in "${SANDBOX_USERS[@]}"; do
            IFS=: read -r uname _ groups <<<"$u"
            [[ ",$groups," == *",$name,"* ]] && members+=("$uname")
        done
        echo "$name:x:$gid:$(IFS=,; echo "${members[*]}")" >>"$SANDBOX_DIR/group"
    done
    for entry in "${SANDBOX_USERS[@]}"; do
        IFS=: read -r name uid groups <<<"$entry"
        echo "$name:x:$uid:$uid::/nonexistent:/bin/sh" >>"$SANDBOX_DIR/passwd"
        echo "$name:x:$uid:" >>"$SANDBOX_DIR/group"
        # No password ("*"), not locked: account checks (pam_unix) pass.
        echo "$name:*:19000:0:99999:7:::" >>"$SANDBOX_DIR/shadow"
    done
    mount --bind "$SANDBOX_DIR/passwd" /etc/passwd
    mount --bind "$SANDBOX_DIR/group" /etc/group
    mount --bind "$SANDBOX_DIR/shadow" /etc/shadow
}

# Starts a private dbus-daemon with jit's policy; sets DBUS_SYSTEM_BUS_ADDRESS.
sandbox_bus() {
    local root=$1
    sed -e "s|@SOCKET@|$SANDBOX_DIR/bus.socket|" -e "s|@POLICY@|$root/packaging/dbus/org.jit.Daemon1.conf|" \
        "$root/tests/fixtures/bus.conf.in" >"$SANDBOX_DIR/bus.conf"
    dbus-daemon --config-file="$SANDBOX_DIR/bus.conf" --nofork --nopidfile 2>>"$SANDBOX_DIR/bus.log" &
    SANDBOX_PIDS+=($!)
    export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$SANDBOX_DIR/bus.socket"
    for _ in $(seq 100); do [[ -S "$SANDBOX_DIR/bus.socket" ]] && return; sleep 0.05; done
    echo "dbus-daemon did not start" >&2; exit 1
}

sandbox_cleanup() {
    local pid
    for pid in "${SANDBOX_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$SANDBOX_DIR"
}
SANDBOX_PIDS=()
