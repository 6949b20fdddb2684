//! The `semver_*` operators, as PostHog's server reads versions: a leading
//! `v` and surrounding space dropped, leading zeros stripped, missing minor
//! and patch filled with 0, pre-release ordering kept (spec/flags.md §3.5).

use semver::{Version, VersionReq};

use crate::properties::Operator;

/// `None` when either side is not a version; the filter then does not match.
pub(crate) fn matches(operator: Operator, expected: &str, actual: &str) -> Option<bool> {
    use Operator::*;
    let actual = parse(actual)?;
    let requirement =
        |prefix: &str| VersionReq::parse(&format!("{prefix}{}", canonical(trimmed(expected)))).ok();
    Some(match operator {
        SemverEq => actual == parse(expected)?,
        SemverNeq => actual != parse(expected)?,
        SemverGt => actual > parse(expected)?,
        SemverGte => actual >= parse(expected)?,
        SemverLt => actual < parse(expected)?,
        SemverLte => actual <= parse(expected)?,
        SemverTilde => requirement("~")?.matches(&actual),
        SemverCaret => requirement("^")?.matches(&actual),
        SemverWildcard => {
            let pattern: Vec<&str> = trimmed(expected)
                .split('.')
                .map(without_leading_zeros)
                .collect();
            VersionReq::parse(&pattern.join(".").replace('*', "x"))
                .ok()?
                .matches(&actual)
        }
        _ => return None,
    })
}

fn trimmed(version: &str) -> &str {
    version.strip_prefix('v').unwrap_or(version).trim()
}

fn without_leading_zeros(part: &str) -> &str {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return part;
    }
    match part.trim_start_matches('0') {
        "" => "0",
        rest => rest,
    }
}

/// `MAJOR.MINOR.PATCH` from the numeric core, the pre-release/build suffix kept.
fn canonical(version: &str) -> String {
    let (core, suffix) = version.split_at(version.find(['-', '+']).unwrap_or(version.len()));
    let mut parts: Vec<&str> = core.split('.').map(without_leading_zeros).collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    format!("{}{suffix}", parts.join("."))
}

fn parse(version: &str) -> Option<Version> {
    Version::parse(&canonical(trimmed(version))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_padded_and_stripped_of_zeros() {
        assert_eq!(canonical("3.08"), "3.8.0");
        assert_eq!(canonical("3"), "3.0.0");
        assert_eq!(canonical("1.0.0-alpha.1"), "1.0.0-alpha.1");
        assert!(parse("v2.48 ").is_some());
        assert!(parse("1.x").is_none());
    }

    #[test]
    fn ranges() {
        let check = |op, expected, actual| matches(op, expected, actual).unwrap();
        assert!(check(Operator::SemverCaret, "0.2.3", "0.2.9"));
        assert!(!check(Operator::SemverCaret, "0.2.3", "0.3.0"));
        assert!(!check(Operator::SemverCaret, "0.0.3", "0.0.4"));
        assert!(check(Operator::SemverWildcard, "1.*", "1.9.9"));
        assert!(!check(Operator::SemverWildcard, "1.*", "2.0.0"));
        assert!(matches(Operator::SemverWildcard, "1.*.3", "1.0.3").is_none());
    }
}
