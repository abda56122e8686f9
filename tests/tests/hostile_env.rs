//! pam_jit decides the same whatever environment, locale or working
//! directory the user hands sudo or sshd (docs/threats.md, T11): it reads
//! no environment, and neither a preloaded library nor a hostile locale or
//! time zone file changes a denial into an access.

use jit_tests::*;

/// What a user can set before sudo, pointing at files the user controls.
fn hostile(dir: &std::path::Path) -> Vec<String> {
    let d = dir.display();
    vec![
        format!("LD_PRELOAD={d}/evil.so"),
        format!("LD_LIBRARY_PATH={d}"),
        "LD_AUDIT=evil.so".into(),
        format!("TZ={d}/zone"),
        format!("LANG=../../../../{d}/locale"),
        format!("LC_ALL=../../../../{d}/locale"),
        format!("NLSPATH={d}/%N"),
        format!("LOCPATH={d}"),
        format!("XDG_RUNTIME_DIR={d}"),
        format!("DBUS_SYSTEM_BUS_ADDRESS=unix:path={d}/fake-bus"),
        "PAM_JIT_DEBUG=1".into(),
    ]
}

/// A directory alice can enter but not read, as her working directory.
fn unreadable_cwd(env: &Env) -> String {
    let dir = env.dir.path().join("no-read");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o111)).unwrap();
    dir.display().to_string()
}

#[test]
fn sudo_decides_the_same_in_a_hostile_environment() {
    let env = sudo_env("logs");
    let vars = hostile(env.dir.path());
    let cwd = unreadable_cwd(&env);
    let sudo = |env: &Env| {
        let script = format!("cd {cwd} && exec env {} sudo -n id -u", vars.join(" "));
        env.run_as("alice", "sh", &["-c", &script])
    };
    let run = sudo(&env);
    assert_ne!(run.code, 0, "allowed without a grant:{run}");
    assert!(run.stderr.contains("jitctl request logs"), "{run}");
    env.request("alice", "logs", "30m", "hostile");
    let run = sudo(&env).ok();
    assert_eq!(run.stdout.trim(), "0", "{run}");
}

#[test]
fn sshd_decides_the_same_with_a_hostile_client_environment() {
    let env = Env::with_config(&config_with_ssh());
    env.install_pam(&[("sshd", &sshd_stack(&env, "ssh"))], SUDOERS);
    let sshd = Sshd::start_with(&env, &["alice"], "AcceptEnv *\n");
    let vars = hostile(env.dir.path());
    let mut options = Vec::new();
    for var in &vars {
        options.extend(["-o".to_owned(), format!("SetEnv={var}")]);
    }
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let login = || env.run(sshd.ssh_with(&env, "alice", &options, &["echo", "logged-in"]));
    let run = login();
    assert!(run.code != 0 && !run.stdout.contains("logged-in"), "{run}");
    env.request("alice", "ssh", "30m", "hostile");
    let run = login();
    assert!(run.code == 0 && run.stdout.contains("logged-in"), "{run}");
}
