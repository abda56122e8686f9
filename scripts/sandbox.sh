# Sourced by demo.sh: a throw-away world for jit on this machine.
#
# sandbox_enter re-executes the calling script in a private mount namespace in
# which /etc/passwd, /etc/group and /etc/shadow are bind-mounted copies with
# extra users.
# Nothing is written to the real files, and everything vanishes with the
# namespace, even if the script is killed.

# name:uid:groups (comma-separated)
SANDBOX_USERS=(
    "alice:61001:admins,jit-gated"
    "bob:61002:admins,oncall,jit-gated"
    "mike:61003:jit-managers"
    "sam:61004:jit-security,jit-audit"
    "oscar:61005:"
)
SANDBOX_GROUPS=("admins:61101" "jit-managers:61102" "jit-security:61103" "jit-audit:61104" "oncall:61105"
                "jit-gated:61106")

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
    sed -e "s|@SOCKET@|$SANDBOX_DIR/bus.socket|" -e "s|@INCLUDES@|  <include>$root/packaging/dbus/org.jit.Daemon1.conf</include>|" \
        "$root/tests/fixtures/bus.conf.in" >"$SANDBOX_DIR/bus.conf"
    dbus-daemon --config-file="$SANDBOX_DIR/bus.conf" --nofork --nopidfile 2>>"$SANDBOX_DIR/bus.log" &
    SANDBOX_PIDS+=($!)
    export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$SANDBOX_DIR/bus.socket"
    for _ in $(seq 100); do [[ -S "$SANDBOX_DIR/bus.socket" ]] && return; sleep 0.05; done
    echo "dbus-daemon did not start" >&2; exit 1
}

sandbox_cleanup() {
    local pid own
    for pid in "${SANDBOX_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # jitd's session cgroups live under its own cgroup, which is ours: the
    # one cgroup tree a mount namespace does not hide.
    own=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)$(sed -n 's/^0:://p' /proc/self/cgroup)
    [[ -d $own/jit-sessions ]] && { find "$own/jit-sessions" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
    # Nothing may be mounted below the directory removed: rm would go on into
    # the mounted tree (the host's files).
    if findmnt -rn -o TARGET | grep -q "^$SANDBOX_DIR/"; then
        echo "sandbox: $SANDBOX_DIR still has mounts below it; not removing it" >&2
        return 1
    fi
    rm -rf --one-file-system "$SANDBOX_DIR"
}
SANDBOX_PIDS=()

# Gates sudo with pam_jit as the README documents it, inside the namespace
# only: /etc/pam.d and /etc/sudoers are replaced by copies, /run and /var/log
# become empty tmpfs (pam_jit and jit-session reach the bus and jitd only at
# their fixed paths under /run; recordings go to /var/log/jit/sessions), and
# the built recorder appears at /usr/libexec/jit/jit-session (an overlay).
# Call before sandbox_bus (whose socket it links to the system bus's path)
# and before jitd (whose runtime dir, /run/jit, it makes private).
sandbox_gate_sudo() {
    local bin=$1
    cp -a /etc/pam.d "$SANDBOX_DIR/pam.d"
    cat >"$SANDBOX_DIR/pam.d/sudo" <<STACK
#%PAM-1.0
session    required   pam_limits.so
@include common-auth
@include common-account
account required $bin/libpam_jit.so resource=sudo
@include common-session-noninteractive
session required $bin/libpam_jit.so resource=sudo
STACK
    mount --bind "$SANDBOX_DIR/pam.d" /etc/pam.d
    # NOPASSWD: the throw-away users have no password; the gate is pam_jit's account check.
    install -m 0440 /dev/stdin "$SANDBOX_DIR/sudoers" <<'RULES'
Defaults !lecture, !syslog
root ALL=(ALL:ALL) ALL
%jit-gated ALL=(root) NOPASSWD: /usr/libexec/jit/jit-session
RULES
    mount --bind "$SANDBOX_DIR/sudoers" /etc/sudoers
    mount -t tmpfs -o mode=0755 jit-demo-run /run
    mkdir -m 0711 /run/sudo
    mkdir -m 0755 /run/dbus
    ln -s "$SANDBOX_DIR/bus.socket" /run/dbus/system_bus_socket
    mount -t tmpfs -o mode=0755 jit-demo-log /var/log
    # An overlay: what is added to /usr/libexec lands in $SANDBOX_DIR/libexec.
    mkdir "$SANDBOX_DIR/libexec" "$SANDBOX_DIR/libexec.work"
    mount -t overlay jit-demo-libexec \
        -o "lowerdir=/usr/libexec,upperdir=$SANDBOX_DIR/libexec,workdir=$SANDBOX_DIR/libexec.work" /usr/libexec
    install -D -m 0755 "$bin/jit-session" /usr/libexec/jit/jit-session
}
