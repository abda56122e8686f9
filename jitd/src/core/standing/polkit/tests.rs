//! What the scan reads in polkit's rules and local authority, and the
//! order polkitd runs the rules files in.

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
