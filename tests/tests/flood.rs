//! One unprivileged user cannot flood jitd (docs/threats.md, T30): pending
//! requests are capped per user, D-Bus calls are rate-limited per user, and
//! sudo keeps working for everyone else meanwhile.

use std::time::Duration;

use jit_tests::*;

#[test]
fn pending_requests_are_capped_per_user() {
    let env = Env::new();
    for n in 0..5 {
        let doc = env.request("alice", "sudo", "30m", &format!("request {n}"));
        assert_eq!(state_of(&doc), "pending", "{doc:#}");
    }
    let run = env
        .jitctl(
            "alice",
            &["request", "sudo", "--for", "30m", "--reason", "one more"],
        )
        .code(6);
    assert!(run.stderr.contains("5 pending requests"), "{run}");
    // Someone else is not affected.
    assert_eq!(
        state_of(&env.request("bob", "sudo", "30m", "mine")),
        "pending"
    );
}

#[test]
fn a_flood_of_calls_is_refused_and_sudo_still_works() {
    let env = sudo_env("logs");
    env.request("alice", "logs", "30m", "working");
    // oscar calls Status in a loop: past the burst, most calls are refused.
    let flood = format!(
        "for i in $(seq 150); do busctl --address={} call org.jit.Daemon1 /org/jit/Daemon1 \
         org.jit.Daemon1 Status 2>&1; done | grep -c 'too many calls'",
        env.address()
    );
    let flooding = Background::spawn({
        let mut cmd = env.user_command("oscar", "sh");
        cmd.args(["-c", &flood]);
        cmd
    });
    // alice's sudo meanwhile: granted and registered, every time.
    for _ in 0..5 {
        env.sudo("alice", &[], &["true"]).ok();
    }
    let run = flooding.finish(Duration::from_secs(60));
    let refused: u32 = run.stdout.trim().parse().unwrap_or(0);
    assert!(refused >= 50, "only {refused} of 150 calls refused:{run}");
    // The limit is per user: alice is not refused.
    env.jitctl("alice", &["status"]).ok();
}

/// The per-user cap on private-socket connections makes the excess wait its
/// turn, so one user's parallel sudo runs (`xargs -P`, many forks of a
/// deployment tool) all go through.
#[test]
fn forty_parallel_sudo_runs_of_one_user_all_go_through() {
    let env = sudo_env("logs");
    env.request("alice", "logs", "30m", "parallel");
    let script = "pids=(); fails=0; for i in $(seq 40); do sudo -n true & pids+=($!); done; \
                  for p in \"${pids[@]}\"; do wait $p || fails=$((fails + 1)); done; \
                  echo ${#pids[@]} $fails";
    let run = env.run_as("alice", "bash", &["-c", script]).ok();
    assert_eq!(run.stdout.trim(), "40 0", "runs, failures:{run}");
}
