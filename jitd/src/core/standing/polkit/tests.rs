//! What the scan reads in polkit's rules: admin identities, the rules
//! that grant without an administrator, and the order polkitd runs the
//! files in.

use super::*;

#[test]
fn identities_returned_by_admin_rules_are_found_with_their_lines() {
    let text = r#"/* polkit.addAdminRule(function() { return ["unix-user:commented"]; }); */
// polkit.addAdminRule(... "unix-group:alsocommented")
polkit.addRule(function(action, subject) {
    return ["unix-group:notadmin"];
});
polkit.addAdminRule(function(action, subject) {
    if (action.id == "x") { return ['unix-user:alice']; }
    return ["unix-group:sudo", "unix-group:wheel" /* ) */, "unix-netgroup:ops"];
});
"#;
    let found: Vec<(String, usize)> = rule_identities(text)
        .into_iter()
        .map(|i| (i.identity, i.line))
        .collect();
    assert_eq!(
        found,
        [
            ("unix-user:alice".into(), 7),
            ("unix-group:sudo".into(), 8),
            ("unix-group:wheel".into(), 8),
            ("unix-netgroup:ops".into(), 8),
        ]
    );
}

#[test]
fn a_regular_expression_is_neither_a_string_nor_a_comment() {
    let text = r#"polkit.addAdminRule(function(action, subject) {
    if (/^org\.example\.["'`]\/*/.test(action.id)) { return ["unix-user:alice"]; }
    return ["unix-group:sudo"]; // ["unix-user:commented"]
});
"#;
    let found: Vec<(String, usize)> = rule_identities(text)
        .into_iter()
        .map(|i| (i.identity, i.line))
        .collect();
    assert_eq!(
        found,
        [("unix-user:alice".into(), 2), ("unix-group:sudo".into(), 3)]
    );
}

#[test]
fn admin_identities_of_the_local_authority_are_the_last_set() {
    let text =
        "[Configuration]\nAdminIdentities=unix-user:0\n\n[Other]\nAdminIdentities=unix-user:x\n\
                [Configuration]\nAdminIdentities=unix-group:sudo;unix-group:admin\n";
    let found = conf_identities(text).unwrap();
    assert_eq!(
        found
            .iter()
            .map(|i| i.identity.as_str())
            .collect::<Vec<_>>(),
        ["unix-group:sudo", "unix-group:admin"]
    );
    assert_eq!(found[0].line, 7);
    assert_eq!(conf_identities("[Configuration]\n"), None);
}

/// (line, answer, subjects) of each grant; subjects `None`: unnamed.
type Found = Vec<(usize, Answer, Option<Vec<String>>)>;

fn grants(text: &str) -> Found {
    rule_grants(text)
        .into_iter()
        .map(|g| (g.line, g.answer, g.subjects))
        .collect()
}

fn named(identities: &[&str]) -> Option<Vec<String>> {
    Some(identities.iter().map(|i| (*i).to_owned()).collect())
}

/// Each case's grants are what it expects (named in the failure).
fn check(cases: Vec<(&str, impl AsRef<str>, Found)>) {
    for (name, text, expected) in cases {
        assert_eq!(grants(text.as_ref()), expected, "{name}");
    }
}

/// A rule of one `addRule` whose function's body is `body`, from line 2.
fn rule(body: &str) -> String {
    format!("polkit.addRule(function(action, subject) {{\n{body}\n}});\n")
}

#[test]
fn yes_and_auth_self_grant_and_the_answers_needing_an_admin_do_not() {
    let cases: Vec<(&str, String, Found)> = vec![
        (
            "YES to a group",
            rule("if (subject.isInGroup(\"ops\")) {\n  return polkit.Result.YES;\n}"),
            vec![(3, Answer::Yes, named(&["unix-group:ops"]))],
        ),
        (
            "YES to a user, for pkexec only",
            rule(
                "if (action.id == \"org.freedesktop.policykit.exec\" && subject.user == \"bob\")\n\
                 \x20 return polkit.Result.YES;",
            ),
            vec![(3, Answer::Yes, named(&["unix-user:bob"]))],
        ),
        (
            "AUTH_SELF, the user written first, ===",
            rule("if ('bob' === subject.user) { return polkit.Result.AUTH_SELF; }"),
            vec![(2, Answer::AuthSelf, named(&["unix-user:bob"]))],
        ),
        (
            "AUTH_SELF_KEEP as a string, by index",
            rule(
                "if (subject.isInGroup('a') || (subject.user == 'b')) { return \"auth_self_keep\"; }\n\
                 if (subject.isInGroup('c')) { return polkit.Result[\"AUTH_SELF_KEEP\"]; }",
            ),
            vec![
                (
                    2,
                    Answer::AuthSelfKeep,
                    named(&["unix-group:a", "unix-user:b"]),
                ),
                (3, Answer::AuthSelfKeep, named(&["unix-group:c"])),
            ],
        ),
        (
            "AUTH_ADMIN, NO, NOT_HANDLED, null, undefined and nothing",
            rule(
                "if (subject.isInGroup('x')) return polkit.Result.AUTH_ADMIN;\n\
                 if (subject.isInGroup('y')) return polkit.Result.AUTH_ADMIN_KEEP;\n\
                 if (subject.local) return \"no\";\n\
                 if (subject.active) return null;\n\
                 if (action.id == 'a') return undefined;\n\
                 if (action.id == 'b') return;\n\
                 if (action.id == 'c') return \"maybe\";\n\
                 return polkit.Result.NOT_HANDLED",
            ),
            vec![],
        ),
        (
            "a group joined by && to conditions on the action and session",
            rule(
                "if ((action.id == \"org.example.a\" || action.id == \"org.example.b\") &&\n\
                 \x20   subject.local && subject.active == true && subject.isInGroup(\"sudo\")) {\n\
                 \x20 return polkit.Result.YES;\n\
                 }",
            ),
            vec![(4, Answer::Yes, named(&["unix-group:sudo"]))],
        ),
        (
            "addRule called by index",
            "polkit[\"addRule\"](function(action, subject) {\n\
             if (subject.user == 'bob') return polkit.Result.YES;\n\
             return subject.local;\n\
             });\n"
                .into(),
            vec![
                (2, Answer::Yes, named(&["unix-user:bob"])),
                (3, Answer::Unread, None),
            ],
        ),
        (
            "nested guards: the innermost naming one",
            rule(
                "if (subject.isInGroup('wide')) {\n\
                 \x20 if (subject.user == 'narrow') { return polkit.Result.YES; }\n\
                 \x20 if (subject.local) { return polkit.Result.YES; }\n\
                 }",
            ),
            vec![
                (3, Answer::Yes, named(&["unix-user:narrow"])),
                (4, Answer::Yes, named(&["unix-group:wide"])),
            ],
        ),
        (
            "the subject parameter under another name",
            "polkit.addRule(function(a, s) {\nif (s.isInGroup('ops')) return polkit.Result.YES;\n});\n"
                .into(),
            vec![(2, Answer::Yes, named(&["unix-group:ops"]))],
        ),
        (
            "an arrow function",
            "polkit.addRule((a, s) => {\nif (s.user == 'bob') return polkit.Result.YES;\n});\n"
                .into(),
            vec![(2, Answer::Yes, named(&["unix-user:bob"]))],
        ),
    ];
    check(cases);
}

#[test]
fn comments_strings_and_regular_expressions_grant_nothing() {
    let text = rule(
        "// return polkit.Result.YES;\n\
         /* if (subject.isInGroup(\"ops\")) { return polkit.Result.YES; } */\n\
         polkit.log(\"return polkit.Result.YES\" + 'polkit.Result.AUTH_SELF');\n\
         var pattern = /\"[/]return polkit.Result.YES;\\/*/;\n\
         if (pattern.test(action.id) && subject.user == \"alice\") { return polkit.Result.YES; }\n\
         return polkit.Result.NO;",
    );
    assert_eq!(
        grants(&text),
        [(6, Answer::Yes, named(&["unix-user:alice"]))]
    );
}

#[test]
fn subjects_the_scan_cannot_name_are_a_grant_all_the_same() {
    let cases: Vec<(&str, String, Found)> = vec![
        (
            "no condition",
            rule("return polkit.Result.YES;"),
            vec![(2, Answer::Yes, None)],
        ),
        (
            "a condition on the action only",
            rule("if (action.id == \"org.freedesktop.policykit.exec\") { return polkit.Result.YES; }"),
            vec![(2, Answer::Yes, None)],
        ),
        (
            "an else branch",
            rule("if (subject.isInGroup(\"ops\")) { return polkit.Result.NO; } else { return polkit.Result.YES; }"),
            vec![(2, Answer::Yes, None)],
        ),
        (
            "an early return",
            rule("if (!subject.isInGroup(\"ops\")) return polkit.Result.NOT_HANDLED;\nreturn polkit.Result.YES;"),
            vec![(3, Answer::Yes, None)],
        ),
        (
            "a line break ends the guarded statement",
            rule("if (subject.isInGroup(\"ops\")) return polkit.Result.NO\nreturn polkit.Result.YES"),
            vec![(3, Answer::Yes, None)],
        ),
        (
            "an alternative that names nobody",
            rule("if (subject.isInGroup(\"ops\") || subject.local) { return polkit.Result.YES; }"),
            vec![(2, Answer::Yes, None)],
        ),
        (
            "a negation, an inequality, an assignment",
            rule(
                "if (!(subject.user == 'a')) return polkit.Result.YES;\n\
                 if (subject.user != 'b') return polkit.Result.YES;\n\
                 if (subject.user = 'c') return polkit.Result.YES;",
            ),
            vec![
                (2, Answer::Yes, None),
                (3, Answer::Yes, None),
                (4, Answer::Yes, None),
            ],
        ),
        (
            "a ternary",
            rule("return subject.isInGroup(\"ops\") ? polkit.Result.YES : polkit.Result.NO;"),
            vec![(2, Answer::Yes, None)],
        ),
        (
            "a returned variable, and a string in a ternary",
            rule("var answer = decide(subject);\nif (subject.isInGroup('ops')) return answer;\nreturn subject.local ? \"yes\" : \"no\";"),
            vec![
                (3, Answer::Unread, named(&["unix-group:ops"])),
                (4, Answer::Unread, None),
            ],
        ),
        (
            "a function inside the rule's, guarded inside",
            rule("function helper() { if (subject.isInGroup('ops')) return polkit.Result.YES; return false; }\nreturn helper();"),
            vec![(2, Answer::Yes, None), (3, Answer::Unread, None)],
        ),
        (
            "a rule that is no function literal",
            "function decide(action, subject) { return polkit.Result.AUTH_SELF; }\npolkit.addRule(decide);\n".into(),
            vec![(1, Answer::AuthSelf, None), (2, Answer::Unread, None)],
        ),
    ];
    check(cases);
}

#[test]
fn jits_own_rule_grants_nothing() {
    let gate = include_str!("../../../../../packaging/polkit/20-jit.rules");
    assert_eq!(grants(gate), []);
    assert_eq!(rule_identities(gate), []);
}

#[test]
fn rules_files_run_by_name_and_same_names_all_run_etc_first() {
    let mut files = vec![
        "/usr/share/polkit-1/rules.d/50-default.rules",
        "/usr/share/polkit-1/rules.d/10-a.rules",
        "/usr/local/share/polkit-1/rules.d/10-a.rules",
        "/run/polkit-1/rules.d/10-a.rules",
        "/etc/polkit-1/rules.d/10-a.rules",
        "/etc/polkit-1/rules.d/60-local.rules",
        "/run/polkit-1/rules.d/05-early.rules",
    ];
    files.sort_by(|a, b| load_order(a, b));
    assert_eq!(
        files,
        [
            "/run/polkit-1/rules.d/05-early.rules",
            "/etc/polkit-1/rules.d/10-a.rules",
            "/run/polkit-1/rules.d/10-a.rules",
            "/usr/local/share/polkit-1/rules.d/10-a.rules",
            "/usr/share/polkit-1/rules.d/10-a.rules",
            "/usr/share/polkit-1/rules.d/50-default.rules",
            "/etc/polkit-1/rules.d/60-local.rules",
        ]
    );
}

#[test]
fn escapes_are_read_as_javascript_reads_them() {
    let cases: Vec<(&str, String, Found)> = vec![
        (
            "a granting string spelled with escapes",
            rule(
                "if (subject.user == 'a') return \"\\u0079es\";\n\
                 if (subject.user == 'b') return '\\x79\\u{65}\\163';\n\
                 if (subject.user == 'c') return \"auth_\\\n_self\".replace('_', '');\n\
                 if (subject.user == 'd') return 'auth\\_self';",
            ),
            vec![
                (2, Answer::Yes, named(&["unix-user:a"])),
                (3, Answer::Yes, named(&["unix-user:b"])),
                (4, Answer::Unread, named(&["unix-user:c"])),
                (6, Answer::AuthSelf, named(&["unix-user:d"])),
            ],
        ),
        (
            "names spelled with escapes",
            "polkit.add\\u0052ule(function(action, subject) {\n\
             if (subject.user == 'bob') return \"yes\";\n\
             return polkit.Result.\\u{59}ES;\n\
             });\n"
                .into(),
            vec![
                (2, Answer::Yes, named(&["unix-user:bob"])),
                (3, Answer::Yes, None),
            ],
        ),
        (
            "an escaped newline is no line break",
            rule("var s = \"a\\nb\";\nif (subject.user == 'e') return polkit.Result.YES;"),
            vec![(3, Answer::Yes, named(&["unix-user:e"]))],
        ),
    ];
    check(cases);
}

#[test]
fn a_template_literals_substitutions_are_read_as_code() {
    let cases: Vec<(&str, String, Found)> = vec![
        (
            "a result inside a substitution",
            rule("if (subject.user == 'a') return `${polkit.Result.YES}`;"),
            vec![(2, Answer::Yes, named(&["unix-user:a"]))],
        ),
        (
            "a string built in a template",
            rule("if (subject.user == 'b') return `y${'e'}s`;\nreturn `no`;"),
            vec![(2, Answer::Unread, named(&["unix-user:b"]))],
        ),
        (
            "a rule added inside a substitution, its braces nested",
            "var x = `${polkit.addRule(function(action, subject) {\n\
             if (subject.isInGroup(`ops`)) { return \"yes\"; }\n\
             return {a: `}`}.a ? polkit.Result.NO : \"auth_self\";\n\
             })}`;\n"
                .into(),
            vec![
                (2, Answer::Yes, named(&["unix-group:ops"])),
                (3, Answer::Unread, None),
            ],
        ),
    ];
    check(cases);
}

#[test]
fn a_rule_added_where_the_scan_cannot_read_it_is_a_grant() {
    let cases: Vec<(&str, &str, Found)> = vec![
        (
            "addRule called through call, apply or bind",
            "polkit.addRule.call(polkit, function(action, subject) { return \"yes\"; });\n\
             polkit[\"addRule\"].apply(polkit, [function(a, s) { return \"yes\"; }]);\n",
            vec![(1, Answer::Unread, None), (2, Answer::Unread, None)],
        ),
        (
            "an alias",
            "var add = polkit.addRule.bind(polkit);\nadd(function(a, s) { return \"yes\"; });\n",
            vec![(1, Answer::Unread, None)],
        ),
        (
            "addRule's name computed",
            "polkit[\"add\" + \"Rule\"](function(a, s) { return \"yes\"; });\n",
            vec![(1, Answer::Unread, None)],
        ),
        (
            "code made from a string",
            "eval(\"polkit.addRule(function(a, s) { return 'yes'; })\");\n\
             new Function(\"p\", \"p.addRule(function(a, s) { return 'yes'; })\")(polkit);\n",
            vec![(1, Answer::Unread, None), (2, Answer::Unread, None)],
        ),
        (
            "polkit indexed by a string is read as a member",
            "polkit[\"log\"](\"hello\");\npolkit[\"addRule\"](function(a, s) { return polkit.Result.NO; });\n",
            vec![],
        ),
    ];
    check(cases);
}
