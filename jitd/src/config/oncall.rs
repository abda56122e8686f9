//! `[oncall.NAME]`: on-call schedules, each a shift file that config
//! management or a paging tool writes (docs/design.md "On-call schedules").
//! Policy rules name them; jitd reads the files when they change.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;

use super::valid_resource_name;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    file: Spanned<PathBuf>,
}

/// One schedule: where its shifts are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnCallSchedule {
    /// An absolute path to a file of shifts (`core::oncall`'s format).
    pub file: PathBuf,
}

/// Checks every schedule's name and path.
pub(super) fn resolve(
    raw: BTreeMap<Spanned<String>, RawSchedule>,
) -> Result<BTreeMap<String, OnCallSchedule>, (Range<usize>, String)> {
    let mut schedules = BTreeMap::new();
    for (name, schedule) in raw {
        let span = name.span();
        let name = name.into_inner();
        if !valid_resource_name(&name) {
            return Err((
                span,
                format!(
                    "schedule name '{name}' must be 1-64 characters of a-z, 0-9, '-', '_' or '.'"
                ),
            ));
        }
        if let Some(why) = check_file(schedule.file.get_ref()) {
            return Err((schedule.file.span(), format!("[oncall.{name}] file {why}")));
        }
        let file = schedule.file.into_inner();
        schedules.insert(name, OnCallSchedule { file });
    }
    Ok(schedules)
}

/// Why `file` cannot be a schedule's path, if it cannot: jitd opens it by
/// its directory and name (the directory checked, the name never followed
/// if a link), so both must be plain.
fn check_file(file: &std::path::Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    use std::path::Component;
    if !file.is_absolute() {
        return Some("must be an absolute path");
    }
    if file.as_os_str().as_bytes().contains(&0) {
        return Some("must not contain a NUL character");
    }
    if file
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || file.as_os_str().as_bytes().ends_with(b"/")
    {
        return Some("must name a file without '.', '..' or a trailing '/'");
    }
    None
}
