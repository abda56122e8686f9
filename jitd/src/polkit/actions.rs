//! What an action grants without any rule: its implicit authorization for
//! a kind of session, read from the `.policy` files polkitd reads.
//!
//! This is how the gate tells admin actions from the rest: a rule cannot
//! see what the later rules or the defaults would answer, but an action
//! whose default is `yes` or `auth_self*` is open to any user, admin or not.

use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where polkitd reads action definitions (its only directory).
pub const ACTIONS_DIR: &str = "/usr/share/polkit-1/actions";

/// A `<defaults>` value (polkit's `PolkitImplicitAuthorization`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implicit {
    No,
    AuthSelf,
    AuthSelfKeep,
    AuthAdmin,
    AuthAdminKeep,
    Yes,
}

impl Implicit {
    fn parse(text: &str) -> Option<Implicit> {
        Some(match text {
            "no" => Implicit::No,
            "auth_self" => Implicit::AuthSelf,
            "auth_self_keep" => Implicit::AuthSelfKeep,
            "auth_admin" => Implicit::AuthAdmin,
            "auth_admin_keep" => Implicit::AuthAdminKeep,
            "yes" => Implicit::Yes,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Implicit::No => "no",
            Implicit::AuthSelf => "auth_self",
            Implicit::AuthSelfKeep => "auth_self_keep",
            Implicit::AuthAdmin => "auth_admin",
            Implicit::AuthAdminKeep => "auth_admin_keep",
            Implicit::Yes => "yes",
        }
    }

    /// Whether only an admin (an admin's password, or a rule) gets past
    /// this default. `no` counts: what a rule then allows, it allows to
    /// someone chosen, which a gated user without a grant must not be.
    pub fn needs_admin(self) -> bool {
        matches!(
            self,
            Implicit::No | Implicit::AuthAdmin | Implicit::AuthAdminKeep
        )
    }
}

/// The subject's session as polkit classifies it: `any` when it is not
/// local (or in no session at all), else `active` or `inactive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SessionKind {
    Any,
    Inactive,
    Active,
}

impl SessionKind {
    /// The `<defaults>` element polkit uses for this kind of session.
    fn element(self) -> &'static str {
        match self {
            SessionKind::Any => "allow_any",
            SessionKind::Inactive => "allow_inactive",
            SessionKind::Active => "allow_active",
        }
    }
}

#[derive(Debug, Error)]
pub enum ActionsError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: action {action}: unknown default '{value}'")]
    BadDefault {
        path: PathBuf,
        action: String,
        value: String,
    },
}

/// `action`'s implicit authorization for `session`, from the `.policy`
/// files in `dir`; `None` if none defines it. A file that is not XML is
/// skipped, as polkitd skips it. Should two files define the action, the
/// definition that needs an admin wins.
pub fn implicit(
    dir: &Path,
    action: &str,
    session: SessionKind,
) -> Result<Option<Implicit>, ActionsError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ActionsError::Read { path, source }
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let path = entry.map_err(read_err(dir))?.path();
        if path.extension().is_some_and(|e| e == "policy") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut found = None;
    for path in paths {
        // One unreadable file must not refuse every action: skipped, as an
        // unparsable one is (an action nobody defines counts as admin).
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // Most files do not mention the action: skip them unparsed.
        if !text.contains(action) {
            continue;
        }
        let Ok(defined) = implicit_in(&text, action, session) else {
            continue;
        };
        match defined {
            Some(Ok(implicit)) if implicit.needs_admin() => return Ok(Some(implicit)),
            Some(Ok(implicit)) => found = found.or(Some(implicit)),
            Some(Err(value)) => {
                return Err(ActionsError::BadDefault {
                    path,
                    action: action.to_owned(),
                    value,
                })
            }
            None => {}
        }
    }
    Ok(found)
}

/// `action`'s default for `session` in one policy file's text: `None` when
/// the file does not define it, `Err(value)` for a value polkit does not
/// know. A missing default is `no`, as polkitd reads it.
fn implicit_in(
    xml: &str,
    action: &str,
    session: SessionKind,
) -> Result<Option<Result<Implicit, String>>, roxmltree::Error> {
    // Policy files name their DTD; roxmltree never fetches it.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options)?;
    let Some(definition) = doc
        .descendants()
        .find(|n| n.has_tag_name("action") && n.attribute("id") == Some(action))
    else {
        return Ok(None);
    };
    let value = definition
        .children()
        .filter(|n| n.has_tag_name("defaults"))
        .flat_map(|d| d.children())
        .find(|n| n.has_tag_name(session.element()))
        .map(|n| n.text().unwrap_or_default().trim().to_owned());
    Ok(Some(match value {
        None => Ok(Implicit::No),
        Some(value) => Implicit::parse(&value).ok_or(value),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE policyconfig PUBLIC "-//freedesktop//DTD PolicyKit Policy Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/PolicyKit/1/policyconfig.dtd">
<policyconfig>
  <vendor>test</vendor>
  <action id="org.example.exec">
    <description>Run as root</description>
    <description xml:lang="de">Als root ausführen</description>
    <defaults>
      <allow_any>auth_admin</allow_any>
      <allow_inactive>auth_admin</allow_inactive>
      <allow_active>auth_admin_keep</allow_active>
    </defaults>
  </action>
  <action id="org.example.inhibit">
    <defaults>
      <allow_any>yes</allow_any>
      <allow_active> auth_self </allow_active>
    </defaults>
  </action>
  <action id="org.example.odd">
    <defaults><allow_any>sometimes</allow_any></defaults>
  </action>
</policyconfig>
"#;

    #[test]
    fn defaults_are_read_per_kind_of_session() {
        use SessionKind::*;
        for (action, session, want) in [
            ("org.example.exec", Any, Implicit::AuthAdmin),
            ("org.example.exec", Active, Implicit::AuthAdminKeep),
            ("org.example.inhibit", Any, Implicit::Yes),
            ("org.example.inhibit", Active, Implicit::AuthSelf),
            // Not given: polkitd reads "no".
            ("org.example.inhibit", Inactive, Implicit::No),
        ] {
            let got = implicit_in(POLICY, action, session).unwrap();
            assert_eq!(got, Some(Ok(want)), "{action} {session:?}");
        }
        assert_eq!(
            implicit_in(POLICY, "org.example.absent", Any).unwrap(),
            None
        );
        assert_eq!(
            implicit_in(POLICY, "org.example.odd", Any).unwrap(),
            Some(Err("sometimes".into()))
        );
    }

    #[test]
    fn admin_defaults_are_those_a_user_cannot_pass_alone() {
        let admin: Vec<&str> = [
            Implicit::No,
            Implicit::AuthSelf,
            Implicit::AuthSelfKeep,
            Implicit::AuthAdmin,
            Implicit::AuthAdminKeep,
            Implicit::Yes,
        ]
        .into_iter()
        .filter(|i| i.needs_admin())
        .map(Implicit::as_str)
        .collect();
        assert_eq!(admin, ["no", "auth_admin", "auth_admin_keep"]);
    }

    #[test]
    fn a_directory_is_searched_and_broken_files_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.policy"), POLICY).unwrap();
        std::fs::write(dir.path().join("b.policy"), "<not org.example.exec").unwrap();
        std::fs::write(dir.path().join("c.txt"), "org.example.other").unwrap();
        let lookup = |action| implicit(dir.path(), action, SessionKind::Any).unwrap();
        assert_eq!(lookup("org.example.exec"), Some(Implicit::AuthAdmin));
        assert_eq!(lookup("org.example.inhibit"), Some(Implicit::Yes));
        assert_eq!(lookup("org.example.other"), None);

        // A second definition that needs an admin wins over an open one.
        std::fs::write(
            dir.path().join("z.policy"),
            POLICY.replace("<allow_any>yes", "<allow_any>auth_admin"),
        )
        .unwrap();
        assert_eq!(lookup("org.example.inhibit"), Some(Implicit::AuthAdmin));

        let err = implicit(dir.path(), "org.example.odd", SessionKind::Any).unwrap_err();
        assert!(
            err.to_string().contains("unknown default 'sometimes'"),
            "{err}"
        );
        let err = implicit(&dir.path().join("none"), "x", SessionKind::Any).unwrap_err();
        assert!(matches!(err, ActionsError::Read { .. }), "{err}");
    }
}
