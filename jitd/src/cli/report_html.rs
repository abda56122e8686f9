//! `jitctl report --html FILE`: every report in one self-contained page.
//! Inline CSS and inline SVG charts (plotters' SVG backend), no script, no
//! URL: its Content-Security-Policy (`default-src 'none'`) lets it fetch
//! nothing, so it opens the same with no network. Every text is escaped
//! for HTML after `clean` (T20), and the file is written 0640, never
//! through a symbolic link.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

use super::reports::{
    count_of, denied_cells, flagged_cells, overflow_line, percent, route_cells, scan_cells,
    scan_columns, scan_kinds, secs, standing_summary, unused_resource_cells, unused_user_cells,
    usage_cells, DENIED_COLUMNS, FLAGGED_COLUMNS, ROUTE_COLUMNS, UNUSED_RESOURCE_COLUMNS,
    UNUSED_USER_COLUMNS, USAGE_COLUMNS,
};
use super::{CliError, Exit};
use crate::api::{
    DeniedReport, EmergencyReport, MttaReport, ResourceUsage, StandingReport, UnusedReport,
    UsageReport,
};
use crate::core::notify::render::escape_html;
use crate::core::reports::ACCESS_BUCKETS;
use crate::core::sanitize::for_terminal as clean;

/// The page's policy: nothing may be loaded, styles are inline.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// Most resources a chart shows (the busiest); the tables hold them all.
const CHART_RESOURCES: usize = 20;
const WIDTH: u32 = 1100;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1150px}\
h1{font-size:1.6em}h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:1em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.n{text-align:right}.note{color:#555;font-size:.9em}\
svg{display:block;margin:1em 0}";

const BAR: RGBColor = RGBColor(70, 120, 180);
const USED: RGBColor = RGBColor(230, 140, 40);
const SLA: RGBColor = RGBColor(200, 30, 30);

/// `text` safe inside HTML: escaped as on a terminal first (controls,
/// bidi and invisible characters shown), then HTML's own characters.
pub fn escape(text: &str) -> String {
    escape_html(&clean(text))
}

fn chart_failed(e: impl std::fmt::Display) -> CliError {
    CliError::new(Exit::Failed, format!("cannot draw a chart: {e}"))
}

/// A table: the header, then rows of cells already escaped; cells whose
/// header is in `numeric` are right-aligned.
fn html_table(header: &[&str], rows: &[Vec<String>], numeric: &[&str]) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for (h, cell) in header.iter().zip(row) {
            let class = if numeric.contains(h) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// A bucket's bound as an axis label (`5s`, `1h`, `2d`).
fn bound_label(secs: u64) -> String {
    match secs {
        0 => "0".into(),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Where `sla` falls on the histogram's axis, whose bar `i` spans `i` to
/// `i + 1` (log-interpolated within its bucket).
fn sla_position(sla: u64) -> f64 {
    let mut lower = 1u64;
    for (i, upper) in ACCESS_BUCKETS.iter().enumerate() {
        if sla <= *upper {
            let (lo, hi, v) = (lower as f64, *upper as f64, sla.max(lower) as f64);
            let frac = if hi > lo {
                (v / lo).ln() / (hi / lo).ln()
            } else {
                1.0
            };
            return i as f64 + frac.clamp(0.0, 1.0);
        }
        lower = *upper;
    }
    ACCESS_BUCKETS.len() as f64 + 0.5
}

/// Time to access per route: a histogram over [`ACCESS_BUCKETS`] for each
/// route, one panel each, with the route's SLA as a red line.
fn access_chart(r: &MttaReport) -> Result<String, CliError> {
    let panels = r.routes.len().max(1);
    let height = 60 + 190 * u32::try_from(panels).unwrap_or(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_failed)?;
        let root = root
            .titled(
                "Time to access per route (red: the SLA)",
                ("sans-serif", 22),
            )
            .map_err(chart_failed)?;
        let buckets = ACCESS_BUCKETS.len() + 1;
        for (route, area) in r.routes.iter().zip(root.split_evenly((panels, 1))) {
            let top = route
                .distribution
                .iter()
                .map(|b| b.count)
                .max()
                .unwrap_or(0)
                .max(1);
            let caption = format!(
                "{}: {} granted, p50 {}, p90 {}, within SLA {} of {}",
                route.route,
                route.granted,
                secs(route.p50_secs),
                secs(route.p90_secs),
                percent(route.within_sla_share),
                secs(route.sla_secs),
            );
            let mut chart = ChartBuilder::on(&area)
                .caption(clean(&caption), ("sans-serif", 15))
                .margin(6)
                .x_label_area_size(22)
                .y_label_area_size(50)
                .build_cartesian_2d(0f64..buckets as f64, 0u64..top + top / 10 + 1)
                .map_err(chart_failed)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(buckets + 1)
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() > 1e-6 || i < 1.0 {
                        return if i == 0.0 { "0".into() } else { String::new() };
                    }
                    ACCESS_BUCKETS
                        .get(i as usize - 1)
                        .map_or_else(String::new, |b| bound_label(*b))
                })
                .y_desc("requests")
                .draw()
                .map_err(chart_failed)?;
            chart
                .draw_series(route.distribution.iter().enumerate().map(|(i, b)| {
                    let x = i as f64;
                    Rectangle::new([(x + 0.08, 0), (x + 0.92, b.count)], BAR.filled())
                }))
                .map_err(chart_failed)?;
            if let Some(sla) = route.sla_secs {
                let x = sla_position(sla);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, 0), (x, top + top / 10 + 1)],
                        SLA.stroke_width(2),
                    )))
                    .map_err(chart_failed)?;
            }
        }
        root.present().map_err(chart_failed)?;
    }
    Ok(svg)
}

/// The busiest resources first (by `key`), at most [`CHART_RESOURCES`].
fn busiest(usage: &UsageReport, key: impl Fn(&ResourceUsage) -> u64) -> Vec<&ResourceUsage> {
    let mut top: Vec<&ResourceUsage> = usage.resources.iter().collect();
    top.sort_by(|a, b| key(b).cmp(&key(a)).then(a.resource.cmp(&b.resource)));
    top.truncate(CHART_RESOURCES);
    top
}

/// A resource's name on an axis: short, and clean.
fn axis_name(name: &str) -> String {
    super::render::truncate(&clean(name), 14)
}

/// One series of bars: its label, its colour, and each resource's value.
type Series<'a> = (&'a str, RGBColor, &'a dyn Fn(&ResourceUsage) -> f64);

/// Bars per resource: one series per `(label, colour, value)` of each.
fn resource_chart(
    title: &str,
    unit: &str,
    resources: &[&ResourceUsage],
    series: &[Series<'_>],
) -> Result<String, CliError> {
    let n = resources.len().max(1);
    let top = resources
        .iter()
        .flat_map(|r| series.iter().map(move |(_, _, value)| value(r)))
        .fold(0.0, f64::max)
        .max(1.0);
    let names: Vec<String> = resources.iter().map(|r| axis_name(&r.resource)).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            // n segments (plotters' integer ranges include their end).
            .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top * 1.1)
            .map_err(chart_failed)?;
        let segment = f64::from(chart.plotting_area().dim_in_pixel().0) / n as f64;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc(unit)
            .draw()
            .map_err(chart_failed)?;
        let width = 0.84 / series.len() as f64;
        // Pixels left out of a segment, for a bar taking `share` of it.
        let px = |share: f64| (segment * share.max(0.0)) as u32;
        for (k, (label, colour, value)) in series.iter().enumerate() {
            let colour = *colour;
            let (left, right) = (0.08 + width * k as f64, 0.92 - width * (k + 1) as f64);
            let bars = resources.iter().enumerate().map(move |(i, r)| {
                // Segment i spans Exact(i) to Exact(i + 1); each series
                // takes its slice of it.
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), value(r)),
                    ],
                    colour.filled(),
                );
                bar.set_margin(0, 0, px(left), px(right));
                bar
            });
            chart
                .draw_series(bars)
                .map_err(chart_failed)?
                .label(*label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(chart_failed)?;
        }
        root.present().map_err(chart_failed)?;
    }
    Ok(svg)
}

fn hours(secs: u64) -> f64 {
    secs as f64 / 3600.0
}

fn mtta_section(r: &MttaReport) -> Result<String, CliError> {
    let rows: Vec<Vec<String>> = r.routes.iter().map(|t| route_cells(t, escape)).collect();
    Ok(format!(
        "<section id=\"mtta\">\n<h2>Time to access</h2>\n\
         <p class=\"note\">From the request to access granted, per route, against <code>[reports.sla]</code>. \
         A grant that waited for its holder's second factor (step-up) counts until it was activated.</p>\n\
         {}{}</section>\n",
        access_chart(r)?,
        html_table(&ROUTE_COLUMNS, &rows, &["GRANTED", "STEP-UP", "NOT GRANTED"]),
    ))
}

fn usage_section(r: &UsageReport) -> Result<String, CliError> {
    let grants = resource_chart(
        "Grants per resource",
        "grants",
        &busiest(r, |u| u.grants),
        &[("grants", BAR, &|u: &ResourceUsage| u.grants as f64)],
    )?;
    let held = resource_chart(
        "Granted against used time per resource",
        "hours",
        &busiest(r, |u| u.granted_secs),
        &[
            ("granted", BAR, &|u: &ResourceUsage| hours(u.granted_secs)),
            ("used", USED, &|u: &ResourceUsage| hours(u.used_secs)),
        ],
    )?;
    let rows: Vec<Vec<String>> = r.resources.iter().map(|u| usage_cells(u, escape)).collect();
    Ok(format!(
        "<section id=\"usage\">\n<h2>Grants per resource</h2>\n{grants}\
         <h2>Granted against used time</h2>\n\
         <p class=\"note\">Granted: from the grant's start to its end (or now). Used: the time its \
         sessions covered. A used p90 far below the resource's max_duration suggests a shorter one.</p>\n\
         {held}{}</section>\n",
        html_table(&USAGE_COLUMNS, &rows, &["GRANTS"]),
    ))
}

fn emergency_section(r: &EmergencyReport) -> String {
    let rows: Vec<Vec<String>> = r
        .grants
        .iter()
        .map(|g| {
            let review = |role: &str| {
                g.reviews
                    .iter()
                    .find(|v| v.role == role)
                    .map_or("awaited".into(), |v| {
                        format!(
                            "{} by {} at {}: {}",
                            escape(&v.verdict),
                            escape(&v.who),
                            escape(&v.at),
                            escape(&v.comment)
                        )
                    })
            };
            let justification = match (&g.justification_text, &g.justified_at) {
                (Some(text), Some(at)) => format!(
                    "{} at {}: {}",
                    escape(&g.justification.replace('_', " ")),
                    escape(at),
                    escape(text)
                ),
                _ => escape(&g.justification.replace('_', " ")),
            };
            vec![
                g.id.to_string(),
                escape(&g.user),
                escape(&g.resource),
                escape(g.granted_at.as_deref().unwrap_or("(not started)")),
                secs(Some(g.duration_secs)),
                escape(&g.state),
                escape(&g.reason),
                justification,
                review("manager"),
                review("security"),
                g.incidents
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let body = if rows.is_empty() {
        "<p>No break-glass grants.</p>\n".to_owned()
    } else {
        html_table(
            &[
                "id",
                "user",
                "resource",
                "started",
                "for",
                "state",
                "reason",
                "justification",
                "manager",
                "security",
                "incidents",
            ],
            &rows,
            &["id"],
        )
    };
    format!("<section id=\"emergency\">\n<h2>Break-glass grants</h2>\n{body}</section>\n")
}

/// Standing privileges over time: the total of each scan in the window,
/// the first scan ever (the baseline) marked in red, as a point when it
/// is in the window, else as a line at its total.
fn standing_chart(r: &StandingReport) -> Result<String, CliError> {
    let n = r.scans.len();
    let top = r
        .scans
        .iter()
        .map(|s| s.total)
        .chain(r.first.as_ref().map(|f| f.total))
        .max()
        .unwrap_or(0)
        .max(1);
    let top = top + top / 10 + 1;
    let dates: Vec<String> = r
        .scans
        .iter()
        .map(|s| s.at.chars().take(16).collect::<String>().replace('T', " "))
        .collect();
    let first_id = r.first.as_ref().map(|f| f.id);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_failed)?;
        let caption = clean(&standing_summary(r)).into_owned();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Standing privileges over time (red: the first scan)",
                ("sans-serif", 22),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(n.max(1) as f64 - 0.5), 0u64..top)
            .map_err(chart_failed)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.clamp(1, 12))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 1e-6 || i < 0.0 {
                    return String::new();
                }
                dates.get(i as usize).cloned().unwrap_or_default()
            })
            .x_desc(caption)
            .y_desc("standing privileges")
            .draw()
            .map_err(chart_failed)?;
        let points: Vec<(f64, u64)> = r
            .scans
            .iter()
            .enumerate()
            .map(|(i, s)| (i as f64, s.total))
            .collect();
        chart
            .draw_series(std::iter::once(PathElement::new(
                points.clone(),
                BAR.stroke_width(2),
            )))
            .map_err(chart_failed)?;
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, BAR.filled())))
            .map_err(chart_failed)?;
        let first_in_window = r.scans.iter().position(|s| Some(s.id) == first_id);
        match (first_in_window, &r.first) {
            (Some(i), _) => {
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (i as f64, r.scans[i].total),
                        6,
                        SLA.filled(),
                    )))
                    .map_err(chart_failed)?;
            }
            (None, Some(first)) if n > 0 => {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(-0.5, first.total), (n as f64 - 0.5, first.total)],
                        SLA.stroke_width(2),
                    )))
                    .map_err(chart_failed)?;
            }
            _ => {}
        }
        root.present().map_err(chart_failed)?;
    }
    Ok(svg)
}

fn standing_section(r: &StandingReport) -> Result<String, CliError> {
    let kinds = scan_kinds(r);
    let header = scan_columns(&kinds);
    let rows: Vec<Vec<String>> = r
        .scans
        .iter()
        .map(|s| scan_cells(s, &kinds, escape))
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let numeric: Vec<&str> = header.iter().copied().filter(|h| *h != "at").collect();
    let table = if rows.is_empty() {
        String::new()
    } else {
        html_table(&header, &rows, &numeric)
    };
    Ok(format!(
        "<section id=\"standing\">\n<h2>Standing privileges over time</h2>\n\
         <p>{}</p>\n<p class=\"note\">Who can become root or another account without a grant \
         (jitctl scan), scan after scan; unread: sources a scan could not read (its total is then \
         a lower bound).</p>\n{}{table}</section>\n",
        escape(&standing_summary(r)),
        standing_chart(r)?,
    ))
}

fn unused_section(r: &UnusedReport) -> String {
    let resources: Vec<Vec<String>> = r
        .resources
        .iter()
        .map(|u| unused_resource_cells(u, escape))
        .collect();
    let users: Vec<Vec<String>> = r
        .users
        .iter()
        .map(|u| unused_user_cells(u, escape))
        .collect();
    let mut body = String::new();
    if resources.is_empty() {
        body.push_str("<p>No grants.</p>\n");
    } else {
        body.push_str(&html_table(
            &UNUSED_RESOURCE_COLUMNS,
            &resources,
            &["GRANTS", "UNUSED", "UNUSED %", "REVOKED UNUSED"],
        ));
    }
    if !users.is_empty() {
        body.push_str("<h3>Per user</h3>\n");
        body.push_str(&html_table(
            &UNUSED_USER_COLUMNS,
            &users,
            &["GRANTS", "UNUSED", "REVOKED UNUSED"],
        ));
    }
    format!(
        "<section id=\"unused\">\n<h2>Unused grants</h2>\n\
         <p class=\"note\">Grants requested in the window that started and had no session (a sudo, \
         a login under pam_jit); revoked unused: of them, revoked by jitd for non-use \
         (revoke_unused_after).</p>\n{body}</section>\n"
    )
}

fn denied_section(r: &DeniedReport) -> String {
    let rows: Vec<Vec<String>> = r.attempts.iter().map(|d| denied_cells(d, escape)).collect();
    let mut body = String::new();
    if rows.is_empty() {
        body.push_str("<p>No denials.</p>\n");
    } else {
        body.push_str(&html_table(&DENIED_COLUMNS, &rows, &["DENIALS"]));
    }
    if !r.flagged.is_empty() {
        let rows: Vec<Vec<String>> = r.flagged.iter().map(|f| flagged_cells(f, escape)).collect();
        body.push_str("<h3>Alerted (access_denied_repeatedly)</h3>\n");
        body.push_str(&html_table(
            &FLAGGED_COLUMNS,
            &rows,
            &["ALERTS", "ATTEMPTS"],
        ));
    }
    if let Some(line) = overflow_line(r) {
        let _ = writeln!(body, "<p>{}</p>", escape(&line));
    }
    let _ = writeln!(
        body,
        "<p>{} in all.</p>",
        count_of(r.total, "denial", "denials")
    );
    format!(
        "<section id=\"denied\">\n<h2>Access attempted without a grant</h2>\n\
         <p class=\"note\">pam_jit's account checks without a grant (access_denied events, \
         coalesced), written in the window.</p>\n{body}</section>\n"
    )
}

/// Every report the page shows.
pub struct Pages<'a> {
    pub mtta: &'a MttaReport,
    pub usage: &'a UsageReport,
    pub emergency: &'a EmergencyReport,
    pub standing: &'a StandingReport,
    pub unused: &'a UnusedReport,
    pub denied: &'a DeniedReport,
}

/// The whole page.
pub fn page(p: &Pages<'_>) -> Result<String, CliError> {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <title>jit reports, {from} to {to}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>jit reports</h1>\n<p>Requests made from {from} to {to} (UTC).</p>\n",
        from = escape(&p.mtta.from),
        to = escape(&p.mtta.to),
    );
    out.push_str(&mtta_section(p.mtta)?);
    out.push_str(&usage_section(p.usage)?);
    out.push_str(&emergency_section(p.emergency));
    out.push_str(&standing_section(p.standing)?);
    out.push_str(&unused_section(p.unused));
    out.push_str(&denied_section(p.denied));
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

/// Writes `text` to `path`, mode 0640 (reports name people), replacing a
/// regular file of the caller's there; never through a symbolic link,
/// never into anything but a regular file with no other name.
pub fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let refused = |why: &str| {
        CliError::new(
            Exit::Conflict,
            format!("{}: {why}; the report was not written", path.display()),
        )
    };
    let failed = |e: std::io::Error| {
        CliError::new(
            Exit::Failed,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(refused("a symbolic link")),
        Ok(meta) if !meta.is_file() => return Err(refused("not a regular file")),
        _ => {}
    }
    // Not truncated at open: a file someone else made there (in a shared
    // directory) is refused before anything is written into it.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused("a symbolic link"),
            _ => failed(e),
        })?;
    use std::os::unix::fs::MetadataExt;
    // What was opened, not what was looked at before: a file swapped in
    // since, or another name of someone's file (a hard link, say to
    // /etc/shadow for root), is refused before it is truncated.
    let opened = file.metadata().map_err(failed)?;
    if !opened.is_file() {
        return Err(refused("not a regular file"));
    }
    if opened.uid() != nix::unistd::geteuid().as_raw() {
        return Err(refused("a file someone else owns"));
    }
    if opened.nlink() > 1 {
        return Err(refused("a file with other names (hard links)"));
    }
    file.set_len(0).map_err(failed)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o640))
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::reports::{
        denied, mtta, standing, unused, usage, AccessCounts, DeniedEvent, GrantUse, GrantedCount,
        ScanCount, UnusedCount, Window,
    };
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    type All = (
        MttaReport,
        UsageReport,
        EmergencyReport,
        StandingReport,
        UnusedReport,
        DeniedReport,
    );

    fn reports() -> All {
        let window = Window { from: 0, to: 86400 };
        let sla: BTreeMap<String, Duration> = [("auto".to_owned(), Duration::from_secs(60))]
            .into_iter()
            .collect();
        let counts = AccessCounts {
            granted: vec![GrantedCount {
                route: "auto".into(),
                secs: 3,
                count: 4,
                step_up: 0,
                holder_wait_secs: 0,
            }],
            open: Vec::new(),
        };
        let grants = [GrantUse {
            resource: "db<script>".into(),
            granted_secs: 3600,
            used_secs: 60,
        }];
        let emergency = EmergencyReport {
            report: "emergency".into(),
            from: "x".into(),
            to: "y".into(),
            grants: Vec::new(),
        };
        let scans: Vec<ScanCount> = [(1, 100, 7), (2, 50_000, 5), (3, 80_000, 4)]
            .into_iter()
            .map(|(id, at, total)| ScanCount {
                id,
                at,
                total,
                counts: [("sudoers".to_owned(), total)].into_iter().collect(),
                errors: 0,
            })
            .collect();
        let unused_counts = [UnusedCount {
            resource: "db<script>".into(),
            user: "alice".into(),
            uid: 61001,
            grants: 2,
            unused: 1,
            revoked_unused: 1,
        }];
        let denials = [DeniedEvent::Denied {
            user: "mallory<b>".into(),
            uid: 61009,
            resource: "sudo".into(),
            service: "sudo".into(),
            count: 3,
            first: 10,
            last: 20,
        }];
        (
            mtta(&counts, &sla, window),
            usage(&grants, &BTreeMap::new(), window),
            emergency,
            standing(scans.first(), &scans, window),
            unused(&unused_counts, window),
            denied(&denials, window),
        )
    }

    fn page_of(all: &All) -> String {
        page(&Pages {
            mtta: &all.0,
            usage: &all.1,
            emergency: &all.2,
            standing: &all.3,
            unused: &all.4,
            denied: &all.5,
        })
        .unwrap()
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_what_people_typed() {
        let html = page_of(&reports());
        assert!(html.contains(CSP), "{html}");
        assert_eq!(html.matches("<svg").count(), 4, "{html}");
        assert!(html.contains("mallory&lt;b&gt;"), "{html}");
        assert!(html.contains("change -42.9%"), "{html}");
        assert!(!html.contains("placeholder"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("db&lt;script&gt;"), "{html}");
        for forbidden in ["http:", "https:", "src=", "url("] {
            let outside_namespaces = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !outside_namespaces.contains(forbidden),
                "{forbidden} in {html}"
            );
        }
        for id in ["standing", "unused", "denied"] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
    }

    #[test]
    fn escaping_covers_html_and_terminal_tricks() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(escape("x\u{202e}y\x1b"), "x\\u{202e}y\\u{1b}");
    }

    #[test]
    fn the_sla_line_falls_in_its_bucket() {
        // (sla, position): a bound ends its bucket; between bounds, log-interpolated.
        for (sla, at) in [
            (5, 1.0),
            (60, 4.0),
            (300, 6.0),
            (4 * 3600, 11.0),
            (86400, 14.0),
        ] {
            assert!(
                (sla_position(sla) - at).abs() < 1e-9,
                "{sla}: {}",
                sla_position(sla)
            );
        }
        let between = sla_position(90);
        assert!(between > 4.0 && between < 5.0, "{between}");
        assert!(sla_position(10 * 86400) > ACCESS_BUCKETS.len() as f64);
    }

    #[test]
    fn the_page_is_written_0640_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.html");
        write_private(&file, "one").unwrap();
        write_private(&file, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "two");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link.html");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_private(&link, "evil").unwrap_err();
        assert_eq!(err.exit, Exit::Conflict, "{}", err.message);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let err = write_private(dir.path(), "x").unwrap_err();
        assert_eq!(err.exit, Exit::Conflict, "{}", err.message);
        // Another name of a file (a hard link): left as it is.
        let linked = dir.path().join("linked.html");
        std::fs::hard_link(&target, &linked).unwrap();
        let err = write_private(&linked, "evil").unwrap_err();
        assert_eq!(err.exit, Exit::Conflict, "{}", err.message);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        // Someone else's file there (a shared directory): left as it is.
        let theirs = dir.path().join("theirs.html");
        std::fs::write(&theirs, "theirs").unwrap();
        let other = if nix::unistd::geteuid().is_root() {
            65534
        } else {
            0
        };
        if std::os::unix::fs::chown(&theirs, Some(other), None).is_ok() {
            let err = write_private(&theirs, "report").unwrap_err();
            assert_eq!(err.exit, Exit::Conflict, "{}", err.message);
            assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "theirs");
        }
    }
}
