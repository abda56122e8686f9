//! Every refusal has its exit code and one line on stderr, and the daemon keeps serving.

use jit_tests::*;

#[test]
fn refusals_have_their_exit_codes() {
    let env = Env::new();
    let req = |user: &str, res: &str, dur: &str, reason: &str| {
        env.jitctl(
            user,
            &["request", res, "--for", dur, "--reason", reason, "--json"],
        )
    };
    req("alice", "nosuch", "30m", "x").code(4);
    req("oscar", "logs", "30m", "x").code(3);
    let cap = req("alice", "sudo", "5h", "x").code(2);
    assert!(
        cap.stderr.contains("4h"),
        "the message should name the cap:{cap}"
    );
    req("alice", "logs", "banana", "x").code(2);
    req("alice", "logs", "0s", "x").code(2);
    req("alice", "logs", "30m", "").code(2);
    req("alice", "logs", "30m", "   ").code(2);
    req("alice", "logs", "30m", &"r".repeat(3000)).code(2);
    req("alice", "logs", "30m", &"r".repeat(2048)).ok();

    let id = id_of(&env.request("alice", "db", "2h", "pending one")).to_string();
    let deny = env.jitctl("olivia", &["deny", &id]);
    assert_eq!(deny.code, 2, "deny without a comment:{deny}");
    env.jitctl("olivia", &["deny", &id, "--comment", ""])
        .code(2);
    env.jitctl("olivia", &["approve", &id, "--comment", &"c".repeat(5000)])
        .code(2);
    env.jitctl("alice", &["list", "--bogus"]).fails();
    assert_eq!(state_of(&env.show("alice", id.parse().unwrap())), "pending");

    env.jitctl("alice", &["status"]).ok();
    env.jitctl("root", &["status", "--json"]).ok().json();
    // Nothing refused was recorded as a request.
    let mine = env.jitctl_json("alice", &["list", "--all", "--json"]);
    assert_eq!(mine.as_array().unwrap().len(), 2, "{mine:#}");
}

#[test]
fn unreachable_daemon_is_exit_5() {
    let env = Env::without_jitd(TEST_CONFIG);
    env.jitctl("alice", &["status"]).code(5);
    env.jitctl(
        "alice",
        &["request", "logs", "--for", "1m", "--reason", "x"],
    )
    .code(5);
}

#[test]
fn hostile_text_round_trips_and_is_not_printed_raw() {
    let env = Env::new();
    let sql = "'); DROP TABLE requests;--";
    let esc = "\x1b[2J\x1b]52;c;AAAA\x07 and \u{202e}txt.exe";
    for reason in [sql, esc] {
        let doc = env.request("alice", "db", "2h", reason);
        let id = id_of(&doc);
        assert_eq!(doc["reason"].as_str(), Some(reason), "{doc:#}");
        let shown = env.show("olivia", id);
        assert_eq!(shown["reason"].as_str(), Some(reason), "{shown:#}");
        for user in ["alice", "olivia"] {
            let human = env.jitctl(user, &["show", &id.to_string()]).ok();
            assert!(
                !human.stdout.contains('\x1b'),
                "raw ESC in human output:{human}"
            );
            assert!(
                !human.stdout.contains('\x07'),
                "raw BEL in human output:{human}"
            );
            assert!(
                !human.stdout.contains('\u{202e}'),
                "raw bidi override in human output:{human}"
            );
        }
        let list = env.jitctl("olivia", &["list", "--pending"]).ok();
        assert!(
            !list.stdout.contains('\x1b'),
            "raw ESC in list output:{list}"
        );
    }
    // The requests table survived.
    let all = env.jitctl_json("root", &["list", "--all", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 2, "{all:#}");
    env.request("bob", "logs", "5m", "still works");
}

/// Bidi controls, invisible characters, tag characters and a C1 control in
/// a reason: escaped in human output (`\u{..}`) and in `--json` (`\uXXXX`,
/// surrogate pairs for the tags), and the JSON still reads back exactly.
#[test]
fn hostile_text_is_escaped_in_json_and_human_output() {
    let env = Env::new();
    let reason = "ok \u{202e}exe.txt \u{61c}\u{180e} tag\u{e0041}\u{e0042} \
                  zw\u{200b} c1\u{9b}6n bidi\u{2066}x\u{2069} \u{2764}\u{fe0f}\u{fe0f}";
    let id = id_of(&env.request("alice", "db", "2h", reason)).to_string();

    let json = env.jitctl("olivia", &["show", &id, "--json"]).ok();
    let golden = concat!(
        r#""reason": "ok \u202eexe.txt \u061c\u180e tag\udb40\udc41\udb40\udc42 "#,
        r#"zw\u200b c1\u009b6n bidi\u2066x\u2069 "#,
        "\u{2764}\u{fe0f}",
        r#"\ufe0f","#
    );
    assert!(
        json.stdout.lines().any(|l| l.trim() == golden),
        "no line {golden} in:{json}"
    );
    assert_eq!(json.json()["reason"], reason, "--json is not lossless");

    let human = env.jitctl("olivia", &["show", &id]).ok();
    let golden = concat!(
        r"ok \u{202e}exe.txt \u{61c}\u{180e} tag\u{e0041}\u{e0042} ",
        r"zw\u{200b} c1\u{9b}6n bidi\u{2066}x\u{2069} ",
        "\u{2764}\u{fe0f}",
        r"\u{fe0f}"
    );
    assert!(
        human.stdout.lines().any(|l| l.ends_with(golden)),
        "no line ending in {golden} in:{human}"
    );

    // Nothing hostile is left raw in either.
    for (what, out) in [("--json", &json.stdout), ("human", &human.stdout)] {
        let raw: Vec<char> = out
            .chars()
            .filter(|c| reason.contains(*c) && !c.is_ascii())
            .filter(|c| !['\u{2764}', '\u{fe0f}'].contains(c))
            .collect();
        assert!(raw.is_empty(), "{what} output has {raw:?} raw:\n{out}");
        assert_eq!(
            out.matches('\u{fe0f}').count(),
            1,
            "{what}: one variation selector after ❤ is kept, the second escaped:\n{out}"
        );
    }
}
