//! Self-checks of the harness: fixture users exist only inside the namespace,
//! the private bus comes up and everything is gone after drop.

use jit_tests::{Env, TEST_CONFIG};

#[test]
fn namespace_users_and_bus() {
    let env = Env::without_jitd(TEST_CONFIG);
    let id = env.run_as("root", "id", &["maria"]).ok();
    assert!(id.stdout.contains("uid=61006(maria)"), "{id}");
    assert!(
        id.stdout.contains("jit-managers") && id.stdout.contains("jit-security"),
        "{id}"
    );
    let who = env.run_as("alice", "id", &["-un"]).ok();
    assert_eq!(who.stdout.trim(), "alice", "{who}");
    let groups = env.run_as("alice", "id", &["-Gn"]).ok();
    assert!(groups.stdout.contains("admins"), "{groups}");

    // The host is untouched.
    let host = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(
        !host.contains("jit fixture"),
        "fixture users leaked into the host /etc/passwd"
    );

    // The bus answers, also to a fixture user.
    let ping = env
        .busctl_call(
            "oscar",
            &[
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetId",
            ],
        )
        .ok();
    assert!(ping.stdout.starts_with("s "), "{ping}");
    assert!(!env.name_owned());

    let ns = env.ns_pid();
    drop(env);
    assert!(
        !std::path::Path::new(&format!("/proc/{ns}")).exists(),
        "namespace holder {ns} still alive"
    );
}
