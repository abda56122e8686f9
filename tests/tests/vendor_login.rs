//! A vendor's ssh login as the README sets it up: real sshd on loopback
//! with the shipped Match block (`packaging/ssh/jit-vendors.conf`: the key,
//! then keyboard-interactive), pam_jit's `auth` hook asking jitd for a TOTP
//! code: the seed shown at the first login (in the login's conversation,
//! before any recorded session), then no code, a wrong one and a replayed
//! one refused, the right one admitted into a recorded session.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jit_tests::*;
use totp_rs::Totp;

const BASE: u32 = 70_600;

fn config() -> String {
    format!(
        "{TEST_CONFIG}\n[vendors]\nsponsors = [\"user:alice\"]\nuid_min = {BASE}\nuid_max = {}\n\n\
         [managers]\nalice = \"mike\"\n\n\
         [[resource]]\nname = \"vssh\"\nenvironment = \"staging\"\neligible = [\"group:admins\"]\n\
         vendors = true\n",
        BASE + 9
    )
}

/// `/etc/pam.d/sshd` for vendors as the README gives it: the vendors'
/// group authenticates with pam_jit's code instead of common-auth.
fn vendor_stack(env: &Env) -> String {
    let jit = env.jit_args("vssh");
    format!(
        "#%PAM-1.0\n\
         auth [success=1 default=ignore] pam_succeed_if.so quiet user notingroup jit-vendors\n\
         auth [success=done default=die] {jit} timeout=2s\n\
         @include common-auth\n\
         account required pam_nologin.so\n\
         @include common-account\n\
         account required {jit} {EXEMPT} timeout=1s\n\
         @include common-session\n\
         session required {jit} {EXEMPT} timeout=1s\n"
    )
}

struct World {
    env: Env,
    sshd: Sshd,
    /// The vendor's private key.
    key: PathBuf,
    /// What the askpass program answers (the code), written by the test.
    answer: PathBuf,
    /// What the askpass program was last shown.
    prompt: PathBuf,
    askpass: PathBuf,
}

fn world() -> World {
    // A network of its own: jitd's rules for vendors stay off the host's.
    let mut env = Env::with_own_network(&config());
    env.ns_sh("ip link set lo up");
    let rec_dir = env.dir.path().join("sessions");
    env.write_config(&format!(
        "{}\n[recordings]\ndir = \"{}\"\n",
        config(),
        rec_dir.display()
    ));
    env.private_system_dirs();
    let auth_only = format!(
        "auth [success=done default=die] {} timeout=2s\n",
        env.jit_args("vssh")
    );
    env.install_pam_d(&[("sshd", &vendor_stack(&env)), ("jit-auth", &auth_only)]);
    env.ns_sh("mount -t tmpfs -o mode=0755 jit-test-run /run && mkdir -m 0755 /run/sshd");
    env.link_system_bus();
    install_recorder(&env);
    env.start_jitd();
    let include = format!(
        "Include {}\n",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packaging/ssh/jit-vendors.conf")
            .display()
    );
    let sshd = Sshd::start_with(&env, &[], &include);
    let key = env.dir.path().join("vendor.id");
    keygen(&key, "jdoe@laptop");
    let answer = env.dir.path().join("answer");
    let prompt = env.dir.path().join("prompt");
    // sshd puts PAM's text (the seed) in front of the prompt it goes with:
    // the askpass program keeps what it was shown.
    let askpass = env.write_script(
        "askpass",
        &format!(
            "printf '%s' \"$1\" > {p}\nfor i in $(seq 100); do [ -e {a} ] && break; sleep 0.1; done\ncat {a}",
            p = prompt.display(),
            a = answer.display()
        ),
    );
    World {
        env,
        sshd,
        key,
        answer,
        prompt,
        askpass,
    }
}

/// alice sponsors v-jdoe with the world's key; mike and sam approve; the
/// account is made.
fn approved_vendor(w: &World) {
    let key = w.key.with_extension("id.pub");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    let doc = w.env.jitctl_json(
        "alice",
        &[
            "vendor",
            "request",
            "--vendor",
            "Acme",
            "--name",
            "jdoe",
            "--email",
            "jdoe@acme.example",
            "--resources",
            "vssh",
            "--for",
            "1d",
            "--project",
            "P",
            "--reason",
            "tune",
            "--key",
            &key.display().to_string(),
            "--json",
        ],
    );
    let id = doc["id"].as_u64().expect("id").to_string();
    w.env.jitctl("mike", &["vendor", "approve", &id]).ok();
    w.env.jitctl("sam", &["vendor", "approve", &id]).ok();
    w.env.wait_vendor_host(&id, "created");
}

/// `ssh v-jdoe@127.0.0.1 echo in`, the key then keyboard-interactive,
/// answered by the askpass program; not waited for.
fn login(w: &World) -> Background {
    let mut ssh = w.sshd.ssh_with_key(
        &w.env,
        "v-jdoe",
        &w.key,
        &[
            "-o",
            "BatchMode=no",
            "-o",
            "LogLevel=INFO",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "PreferredAuthentications=publickey,keyboard-interactive",
            "-o",
            "IdentitiesOnly=yes",
        ],
        &["echo", "in"],
    );
    ssh.env("SSH_ASKPASS", &w.askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0");
    Background::spawn(ssh)
}

/// A login answered with `code` ("" for none): its result.
fn login_with(w: &World, code: &str) -> Run {
    fs::write(&w.answer, format!("{code}\n")).expect("answer");
    login(w).finish(Duration::from_secs(20))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn a_vendor_enrolls_at_the_first_login_then_needs_a_fresh_code_at_each() {
    let w = world();
    approved_vendor(&w);
    let _ = fs::remove_file(&w.answer);

    // First login: the seed arrives in the conversation, before any
    // session; its first code confirms it and lets the vendor in.
    let first = login(&w);
    let uri = wait_for(Duration::from_secs(15), || {
        let shown = fs::read_to_string(&w.prompt).ok()?;
        let line = shown.lines().find(|l| l.contains("otpauth://totp/"))?;
        Some(line[line.find("otpauth://")?..].trim().to_owned())
    })
    .unwrap_or_else(|| {
        panic!(
            "no seed shown:{}\nsshd: {}",
            first.stderr_so_far(),
            w.sshd.process.stderr_so_far()
        )
    });
    let shown = fs::read_to_string(&w.prompt).expect("prompt");
    assert!(
        shown.contains('▀') || shown.contains('▄'),
        "no QR code:\n{shown}"
    );
    let app = Totp::from_url(&uri).expect("an otpauth URI");
    fs::write(&w.answer, format!("{}\n", app.generate(now()))).expect("answer");
    let first = first.finish(Duration::from_secs(20));
    assert_eq!(first.code, 0, "{first}{}", w.env.jitd_log_tail());
    assert_eq!(first.stdout.trim(), "in", "{first}");
    let status = w
        .env
        .jitctl_json("root", &["mfa", "status", "v-jdoe", "--json"]);
    assert_eq!(status["state"], "enrolled", "{status:#}");

    // No code, a wrong code: refused.
    let none = login_with(&w, "");
    assert_ne!(none.code, 0, "{none}");
    assert!(!none.stdout.contains("in"), "{none}");
    let wrong = login_with(&w, "000000");
    assert_ne!(wrong.code, 0, "{wrong}");
    // A fresh code: in, into a recorded session. The same code again: refused.
    let code = app.generate(now() + 30).to_string();
    let right = login_with(&w, &code);
    assert_eq!(right.code, 0, "{right}{}", w.env.jitd_log_tail());
    assert_eq!(right.stdout.trim(), "in");
    let replayed = login_with(&w, &code);
    assert_ne!(replayed.code, 0, "{replayed}");
    let refused: Vec<bool> = w
        .env
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "mfa_refused")
        .map(|e| e["detail"]["replayed"] == true)
        .collect();
    assert_eq!(refused, [false, true], "the wrong code, then the replay");
    let recordings = w.env.jitctl_json("root", &["recordings", "list", "--json"]);
    let by_vendor = recordings
        .as_array()
        .expect("recordings")
        .iter()
        .filter(|r| r["user"] == "v-jdoe")
        .count();
    assert_eq!(by_vendor, 2, "{recordings:#}");
}

#[test]
fn the_auth_line_proves_the_account_logging_in_and_vouches_for_nobody_else() {
    let w = world();
    approved_vendor(&w);
    // root is exempt from the gate; the auth line does not vouch for it.
    let root = w.env.pamtester("jit-auth", "root", &["authenticate"]);
    assert_ne!(root.code, 0, "{root}");
    // alice (not root) asking to prove v-jdoe: refused before jitd is asked.
    let mut cmd = w.env.user_command("alice", "pamtester");
    cmd.args(["-v", "jit-auth", "v-jdoe", "authenticate"])
        .stdin(std::process::Stdio::null());
    let other = w.env.run(cmd);
    assert_ne!(other.code, 0, "{other}");
    let asked: Vec<String> = w
        .env
        .audit_events()
        .into_iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("mfa_"))
        .collect();
    assert!(asked.is_empty(), "jitd was asked: {asked:?}");
}
