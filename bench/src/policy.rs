//! Policy rules (W1.10): what evaluating 1,000 `[[policy]]` rules adds to
//! a request, against no rules, measured in the same run; and how long the
//! config with those rules takes to load (zones read, patterns compiled).

use std::collections::HashSet;
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use jitd::core::model::Route;
use jitd::core::oncall::OnCall;
use jitd::core::policy::{Ask, Membership, Policies};
use serde_json::{json, Value};

use crate::stats::median;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const RESOURCES: usize = 100;
const ZONES: [&str; 3] = ["Europe/Berlin", "America/New_York", "UTC"];

struct Groups(HashSet<String>);

impl Membership for Groups {
    fn is_member(&self, group: &str) -> bool {
        self.0.contains(group)
    }
}

/// No rule here names a schedule: nobody is asked about.
struct NoSchedules;

impl OnCall for NoSchedules {
    fn is_on_call(&self, _: &str, _: &str, _: i64) -> bool {
        false
    }
}

/// The rules a config holds.
#[derive(Clone, Copy)]
enum Shape {
    /// Named people and teams, some night windows, some tickets, half
    /// lowering.
    Mix,
    /// Every rule names `res-0` and holds for the requester until its
    /// ticket pattern, so a request walks them all: one pattern for all...
    SharedPattern,
    /// ... or a pattern of each rule's own.
    OwnPatterns,
}

/// `rules` rules of `shape`.
fn config(rules: usize, shape: Shape) -> String {
    let mut text = String::from(
        "[roles]\nmanager = [\"user:mike\"]\nsecurity = [\"user:sam\"]\n[policy_limits]\nrisk_ceiling = 100\n",
    );
    for r in 0..RESOURCES {
        let _ = write!(
            text,
            "[[resource]]\nname = \"res-{r}\"\nowners = [\"user:olivia\"]\neligible = [\"group:admins\"]\nmax_duration = \"4h\"\n"
        );
    }
    for i in 0..rules {
        let zone = ZONES[i % ZONES.len()];
        let _ = write!(text, "[[policy]]\nname = \"rule-{i}\"\n");
        if !matches!(shape, Shape::Mix) {
            let own = if matches!(shape, Shape::OwnPatterns) {
                format!("{i}")
            } else {
                String::new()
            };
            let _ = write!(
                text,
                "groups = [\"g{}\"]\nresources = [\"res-0\"]\nmax_duration = \"1h\"\nhours = \"00:00-24:00\"\ntimezone = \"{zone}\"\nticket = \"INC-{own}[0-9]+\"\naction = \"approve\"\n",
                i % 20
            );
            continue;
        }
        let _ = write!(
            text,
            "users = [\"u{i}\", \"u{}\"]\nresources = [\"res-{}\"]\nmax_duration = \"{}m\"\naction = \"{}\"\n",
            i + 7,
            i % RESOURCES,
            30 * (1 + i % 4),
            if i % 2 == 0 { "approve" } else { "lower" }
        );
        if i % 3 == 0 {
            let _ = writeln!(text, "groups = [\"g{}\"]", i % 20);
        }
        if i % 2 == 0 {
            let _ = write!(
                text,
                "days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\nhours = \"{}\"\ntimezone = \"{zone}\"\n",
                if i % 4 == 0 { "22:00-06:00" } else { "08:00-18:00" }
            );
        }
        if i % 4 == 1 {
            text.push_str("ticket = \"(INC|CHG)-[0-9]{1,8}\"\n");
        }
    }
    text
}

/// `rules` rules naming `user` and `resource`, each needing a ticket of a
/// pattern of its own, under a ceiling no request reaches: a request
/// without a ticket is looked at by every rule, to its ticket.
pub fn rules_for(rules: usize, user: &str, resource: &str) -> String {
    let mut text = String::from("\n[policy_limits]\nrisk_ceiling = 100\n");
    for i in 0..rules {
        let _ = write!(
            text,
            "\n[[policy]]\nname = \"bench-{i}\"\nusers = [\"{user}\"]\nresources = [\"{resource}\"]\nmax_duration = \"8h\"\nticket = \"INC-{i}[0-9]+\"\naction = \"approve\"\n"
        );
    }
    text
}

fn load(text: &str) -> Result<(Policies, f64), BoxError> {
    let t0 = Instant::now();
    let config = jitd::config::parse(text, Path::new("bench.toml"))?;
    Ok((config.policy, t0.elapsed().as_secs_f64() * 1000.0))
}

/// Microseconds per request (median of `rounds` rounds of `asks`).
fn per_request(p: &Policies, asks: &[Ask<'_>], groups: &Groups, rounds: usize) -> (f64, usize) {
    let mut applied = 0;
    let mut rounds_us = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        applied = 0;
        let t0 = Instant::now();
        for ask in asks {
            if std::hint::black_box(p.decide(ask, groups, &NoSchedules)).is_some() {
                applied += 1;
            }
        }
        rounds_us.push(t0.elapsed().as_secs_f64() * 1e6 / asks.len() as f64);
    }
    (median(rounds_us), applied)
}

pub fn run(rules: usize, requests: usize, rounds: usize) -> Result<Value, BoxError> {
    let (none, _) = load(&config(0, Shape::Mix))?;
    let (mix, mix_load_ms) = load(&config(rules, Shape::Mix))?;
    let (worst, worst_load_ms) = load(&config(rules, Shape::SharedPattern))?;
    let (own, own_load_ms) = load(&config(rules, Shape::OwnPatterns))?;
    let users: Vec<String> = (0..requests)
        .map(|k| format!("u{}", k % (rules * 3 / 2).max(1)))
        .collect();
    let resources: Vec<String> = (0..RESOURCES).map(|r| format!("res-{r}")).collect();
    // A Monday to Sunday of request times, 97 s apart.
    let start = 1_800_000_000;
    let asks: Vec<Ask<'_>> = (0..requests)
        .map(|k| Ask {
            user: &users[k],
            resource: &resources[k % RESOURCES],
            duration: Duration::from_secs(1800 + (k as u64 % 4) * 1800),
            ticket: (k % 2 == 0).then_some("INC-4711"),
            at: start + (k as i64 * 97) % (7 * 86_400),
            route: if k % 3 == 0 {
                Route::Owner
            } else {
                Route::Dual
            },
            has_owners: true,
            score_in_hours: 50,
            extension: false,
            vendor: false,
            scheduled: false,
        })
        .collect();
    let groups = Groups(["g1", "g5"].into_iter().map(String::from).collect());
    let (base_us, _) = per_request(&none, &asks, &groups, rounds);
    let (mix_us, mix_applied) = per_request(&mix, &asks, &groups, rounds);
    // Every rule looked at to its last condition, and none applies.
    let member_of_all = Groups((0..20).map(|g| format!("g{g}")).collect());
    let worst_asks: Vec<Ask<'_>> = asks
        .iter()
        .map(|a| Ask {
            resource: "res-0",
            duration: Duration::from_secs(1800),
            ticket: Some("CHG-1"),
            ..*a
        })
        .collect();
    let (worst_us, worst_applied) = per_request(&worst, &worst_asks, &member_of_all, rounds);
    let (own_us, own_applied) = per_request(&own, &worst_asks, &member_of_all, rounds);
    Ok(json!({
        "rules": rules,
        "requests": requests,
        "rounds": rounds,
        "baseline_us": base_us,
        "mix_us": mix_us,
        "mix_added_us": mix_us - base_us,
        "mix_applied": mix_applied,
        "worst_us": worst_us,
        "worst_added_us": worst_us - base_us,
        "worst_applied": worst_applied,
        "mix_load_ms": mix_load_ms,
        "worst_load_ms": worst_load_ms,
        "own_us": own_us,
        "own_added_us": own_us - base_us,
        "own_applied": own_applied,
        "own_load_ms": own_load_ms,
    }))
}
