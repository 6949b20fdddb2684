//! A realistic B2B product's events, generated company by company:
//! companies with name, industry, plan and seats; their users; a sign-up →
//! activation → invitation funnel with plan-dependent drop-off; daily usage
//! with weekends, churn and resurrection; feature usage. Deterministic for a
//! seed, and shaped exactly as posthog-python sends events.

use std::collections::VecDeque;

use chrono::{DateTime, Datelike, TimeDelta, Utc, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

const SYLLABLES: &[&str] = &[
    "Nor", "vex", "Al", "tri", "Qua", "ra", "Zen", "lo", "Ly", "mo", "Kai", "to", "Bri", "sa",
    "Ori", "on",
];
const SUFFIXES: &[&str] = &[
    "Labs",
    "Systems",
    "Health",
    "Logistics",
    "Capital",
    "Studio",
    "Works",
    "Cloud",
    "Retail",
    "Learning",
];
const INDUSTRIES: &[&str] = &[
    "SaaS",
    "Fintech",
    "Healthcare",
    "Retail",
    "Education",
    "Media",
    "Logistics",
    "Manufacturing",
];
const FIRST_NAMES: &[&str] = &[
    "Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lea",
    "Mateo", "Nia", "Omar", "Priya",
];
const ROLES: &[&str] = &[
    "engineer",
    "product manager",
    "designer",
    "analyst",
    "founder",
    "sales",
    "support",
];
const PAGES: &[&str] = &[
    "/dashboard",
    "/reports",
    "/reports/new",
    "/settings",
    "/billing",
    "/integrations",
    "/team",
    "/docs",
];
const BROWSERS: &[&str] = &["Chrome", "Chrome", "Chrome", "Safari", "Firefox", "Edge"];
const FEATURES: &[(&str, &str, &[&str])] = &[
    (
        "report created",
        "report_type",
        &["funnel", "trend", "retention", "table"],
    ),
    (
        "dashboard viewed",
        "dashboard",
        &["Overview", "Revenue", "Growth", "Ops"],
    ),
    ("export csv", "format", &["csv", "xlsx"]),
    (
        "integration connected",
        "integration",
        &["Slack", "Salesforce", "HubSpot", "Zapier"],
    ),
    ("alert configured", "channel", &["email", "slack"]),
];

/// Plans with their share of companies, seat range and how engaged they are.
const PLANS: &[(&str, f64, (u32, u32), f64)] = &[
    ("free", 0.45, (1, 5), 0.25),
    ("starter", 0.25, (3, 15), 0.35),
    ("pro", 0.20, (10, 60), 0.45),
    ("enterprise", 0.10, (50, 400), 0.55),
];

pub struct Dataset {
    rng: StdRng,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    days: i64,
    next_company: usize,
    pending: VecDeque<Map<String, Value>>,
}

impl Dataset {
    /// Events over the `days` days before `now`.
    pub fn new(seed: u64, now: DateTime<Utc>, days: i64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            start: now - TimeDelta::days(days),
            now,
            days,
            next_company: 0,
            pending: VecDeque::new(),
        }
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    /// An instant on `day`, mostly in working hours.
    fn time_on(&mut self, day: i64) -> DateTime<Utc> {
        let hour = if self.rng.random_bool(0.85) {
            self.rng.random_range(8..19)
        } else {
            self.rng.random_range(0..24)
        };
        self.start
            + TimeDelta::days(day)
            + TimeDelta::hours(hour)
            + TimeDelta::seconds(self.rng.random_range(0..3600))
    }

    fn company(&mut self) {
        let c = self.next_company;
        self.next_company += 1;
        let name = format!(
            "{}{} {}",
            self.pick(SYLLABLES),
            self.pick(SYLLABLES).to_lowercase(),
            self.pick(SUFFIXES)
        );
        let key = format!("{}-{c}", name.to_lowercase().replace(' ', "-"));
        let domain = format!("{}.example", key);
        let roll: f64 = self.rng.random();
        let mut cumulative = 0.0;
        let &(plan, _, (lo, hi), engagement) = PLANS
            .iter()
            .find(|(_, share, _, _)| {
                cumulative += share;
                roll < cumulative
            })
            .unwrap_or(&PLANS[0]);
        let seats = self.rng.random_range(lo..=hi);
        let industry = self.pick(INDUSTRIES);
        let users = (seats / 2).clamp(1, 25) as usize;
        let signup_day = self.rng.random_range(0..self.days);
        // Churn: some companies stop using the product; some of those return.
        let churn_day = self
            .rng
            .random_bool(0.35)
            .then(|| signup_day + self.rng.random_range(3..60));
        let back_day = churn_day
            .filter(|_| self.rng.random_bool(0.4))
            .map(|d| d + self.rng.random_range(7..30));
        let groups = json!({"company": key});
        let mut events: Vec<(DateTime<Utc>, Map<String, Value>)> = Vec::new();
        let now = self.now;
        let mut push = |t: DateTime<Utc>, event: &str, distinct_id: &str, properties: Value| {
            if t > now {
                return; // today's later hours have not happened yet
            }
            let mut properties = properties;
            properties["$groups"] = groups.clone();
            properties["$lib"] = json!("posthog-python");
            let Value::Object(map) = json!({"event": event, "distinct_id": distinct_id, "timestamp": t.to_rfc3339(),
                "uuid": uuid::Uuid::new_v4().to_string(), "properties": properties})
            else {
                unreachable!()
            };
            events.push((t, map));
        };

        // The admin arrives anonymously, signs up and describes the company.
        let admin = format!("user-{c}-0");
        let signed_up = self.time_on(signup_day);
        let anon = format!("anon-{c}");
        push(
            signed_up - TimeDelta::minutes(3),
            "$pageview",
            &anon,
            json!({"$current_url": "https://app.example/signup", "$browser": "Chrome"}),
        );
        push(
            signed_up,
            "$identify",
            &admin,
            json!({"$anon_distinct_id": anon,
            "$set": {"email": format!("{}@{domain}", FIRST_NAMES[c % FIRST_NAMES.len()].to_lowercase()),
                     "name": FIRST_NAMES[c % FIRST_NAMES.len()], "role": "founder"}}),
        );
        push(
            signed_up,
            "signed up",
            &admin,
            json!({"signup_source": self.pick(&["organic", "ads", "referral", "partner"])}),
        );
        push(
            signed_up,
            "$groupidentify",
            &admin,
            json!({"$group_type": "company", "$group_key": key,
            "$group_set": {"name": name, "industry": industry, "plan": plan, "seats": seats}}),
        );

        // Activation and invitations drop off more on cheaper plans.
        let mut joined: Vec<(String, i64)> = vec![(admin.clone(), signup_day)];
        if self.rng.random_bool(0.45 + engagement) {
            let day = signup_day + self.rng.random_range(0..3);
            let t = self.time_on(day).max(signed_up + TimeDelta::minutes(5));
            push(
                t,
                "activated",
                &admin,
                json!({"first_report": self.pick(&["funnel", "trend", "retention"])}),
            );
            if users > 1 && self.rng.random_bool(0.35 + engagement) {
                let invite_day = day + self.rng.random_range(0..7);
                let t = self.time_on(invite_day).max(t + TimeDelta::minutes(5));
                push(
                    t,
                    "invited teammate",
                    &admin,
                    json!({"invitees": users - 1}),
                );
                for u in 1..users {
                    let join_day = invite_day + self.rng.random_range(0..10);
                    let id = format!("user-{c}-{u}");
                    let first = FIRST_NAMES[(c + u) % FIRST_NAMES.len()];
                    let t = self.time_on(join_day).max(t + TimeDelta::minutes(1));
                    push(
                        t,
                        "joined team",
                        &id,
                        json!({"$set": {"email": format!("{}{u}@{domain}", first.to_lowercase()),
                        "name": first, "role": self.pick(ROLES)}}),
                    );
                    joined.push((id, join_day));
                }
            }
        }

        // Daily use while the company is active.
        for day in signup_day..self.days {
            let churned = churn_day.is_some_and(|d| day >= d) && back_day.is_none_or(|b| day < b);
            if churned {
                continue;
            }
            let weekday = (self.start + TimeDelta::days(day)).weekday();
            let weekend = matches!(weekday, Weekday::Sat | Weekday::Sun);
            for (id, join_day) in &joined {
                let chance = if weekend {
                    engagement * 0.3
                } else {
                    engagement
                };
                if day < *join_day || !self.rng.random_bool(chance) {
                    continue;
                }
                let mut t = self.time_on(day);
                let session = format!("{:x}", self.rng.random::<u64>());
                let browser = self.pick(BROWSERS);
                for _ in 0..self.rng.random_range(2..9) {
                    if self.rng.random_bool(0.6) {
                        let page = self.pick(PAGES);
                        push(
                            t,
                            "$pageview",
                            id,
                            json!({"$current_url": format!("https://app.example{page}"),
                            "$browser": browser, "$session_id": session}),
                        );
                    } else {
                        let (event, key, values) =
                            FEATURES[self.rng.random_range(0..FEATURES.len())];
                        let value = self.pick(values);
                        push(
                            t,
                            event,
                            id,
                            json!({key: value, "$session_id": session, "duration_ms": self.rng.random_range(50..5000)}),
                        );
                    }
                    t += TimeDelta::seconds(self.rng.random_range(5..400));
                }
            }
        }
        events.sort_by_key(|(t, _)| *t);
        self.pending.extend(events.into_iter().map(|(_, e)| e));
    }
}

impl Iterator for Dataset {
    type Item = Map<String, Value>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.pending.is_empty() {
            self.company();
        }
        self.pending.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_companies_and_a_funnel_with_drop_off() {
        let now = Utc::now();
        let a: Vec<_> = Dataset::new(1, now, 60).take(20_000).collect();
        let b: Vec<_> = Dataset::new(1, now, 60).take(20_000).collect();
        let names = |events: &[Map<String, Value>]| {
            events
                .iter()
                .map(|e| e["event"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b));
        let count = |name: &str| a.iter().filter(|e| e["event"] == name).count();
        assert!(
            count("signed up") > count("activated"),
            "some companies never activate"
        );
        assert!(
            count("activated") > count("invited teammate"),
            "fewer invite"
        );
        assert!(count("$groupidentify") == count("signed up"));
        assert!(
            count("$pageview") > count("signed up") * 10,
            "daily usage dominates"
        );
    }
}
