//! PostHog's bucketing (spec/flags.md §1): SHA-1 of `"{flag_key}.{identifier}{salt}"`,
//! its first 60 bits scaled into [0, 1] with f64 arithmetic.

use sha1::{Digest, Sha1};

/// `2^60 - 1`, the divisor PostHog scales the 60-bit hash by (as an f64 it
/// rounds to `2^60`, exactly as in every PostHog implementation).
const LONG_SCALE: u64 = 0xFFF_FFFF_FFFF_FFFF;

/// SHA-1 of the parts, concatenated, as a fraction of `LONG_SCALE`.
fn scaled(parts: &[&str]) -> f64 {
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let first = u64::from_be_bytes(digest[..8].try_into().expect("SHA-1 has 20 bytes"));
    (first >> 4) as f64 / LONG_SCALE as f64
}

/// Where `identifier` falls for `flag_key`, in [0, 1]. An empty identifier
/// is 0.0 without hashing, as PostHog's server does.
pub fn bucket(flag_key: &str, identifier: &str, salt: &str) -> f64 {
    if identifier.is_empty() {
        return 0.0;
    }
    scaled(&[flag_key, ".", identifier, salt])
}

/// Whether `identifier` is inside a rollout of `percentage` (None = 100).
pub fn in_rollout(flag_key: &str, identifier: &str, percentage: Option<f64>) -> bool {
    match percentage {
        None => true,
        Some(p) if p >= 100.0 => true,
        Some(p) => bucket(flag_key, identifier, "") <= p / 100.0,
    }
}

/// The variant `identifier` gets: the first whose running f64 total of
/// `percentage / 100` exceeds the variant hash. `None` when the weights end
/// before the hash (the flag is then plain `true`).
pub fn variant<'a>(
    flag_key: &str,
    identifier: &str,
    variants: impl IntoIterator<Item = (&'a str, f64)>,
) -> Option<&'a str> {
    let hash = bucket(flag_key, identifier, "variant");
    let mut total = 0.0;
    for (key, percentage) in variants {
        total += percentage / 100.0;
        if hash < total {
            return Some(key);
        }
    }
    None
}

/// The holdout hash: `SHA1("holdout-" + identifier)`, no flag key.
pub fn holdout_bucket(identifier: &str) -> f64 {
    scaled(&["holdout-", identifier])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_divisor_rounds_to_two_to_the_sixty() {
        assert_eq!(LONG_SCALE as f64, (1u64 << 60) as f64);
    }

    #[test]
    fn hash_is_the_first_60_bits_of_sha1() {
        // SHA-1("key.id") = d0a1e2e7 0d68fa26 ...: the first 15 hex digits, scaled.
        let digest = Sha1::digest(b"key.id");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let expected = u64::from_str_radix(&hex[..15], 16).unwrap() as f64 / LONG_SCALE as f64;
        assert_eq!(bucket("key", "id", ""), expected);
        assert!((0.0..=1.0).contains(&expected));
    }

    /// Values printed by posthog-python 7.91.1 (`feature_flags._hash`,
    /// `get_matching_variant`); the full conformance run is a separate test.
    #[test]
    fn matches_posthog_python() {
        assert_eq!(bucket("beta-feature", "user-1", ""), 0.7264912549260886);
        assert_eq!(
            bucket("beta-feature", "user-1", "variant"),
            0.14578218334266493
        );
        assert_eq!(
            bucket("multivariate-flag", "distinct_id_0", "variant"),
            0.6186454537930379
        );
        let variants = [
            ("first", 50.0),
            ("second", 20.0),
            ("third", 20.0),
            ("fourth", 5.0),
            ("fifth", 5.0),
        ];
        let got: Vec<_> = (0..8)
            .map(|i| variant("multivariate-flag", &format!("distinct_id_{i}"), variants).unwrap())
            .collect();
        assert_eq!(
            got,
            ["second", "second", "first", "first", "second", "second", "first", "first"]
        );
    }

    #[test]
    fn empty_identifier_is_inside_every_rollout() {
        assert_eq!(bucket("flag", "", "variant"), 0.0);
        assert!(in_rollout("flag", "", Some(0.0)));
        assert_eq!(variant("flag", "", [("a", 0.0), ("b", 100.0)]), Some("b"));
    }

    #[test]
    fn rollout_edges() {
        assert!(in_rollout("flag", "someone", None));
        assert!(in_rollout("flag", "someone", Some(100.0)));
        let h = bucket("flag", "someone", "");
        assert_eq!(
            in_rollout("flag", "someone", Some(h * 100.0)),
            h <= (h * 100.0) / 100.0
        );
    }

    #[test]
    fn variant_bounds_are_float_sums_in_array_order() {
        // 50/20/20/5/5: bounds 0.5, 0.7, 0.8999999999999999, 0.95, 1.0 (spec §1).
        let mut total = 0.0_f64;
        let bounds: Vec<f64> = [50.0, 20.0, 20.0, 5.0, 5.0]
            .iter()
            .map(|p| {
                total += p / 100.0;
                total
            })
            .collect();
        assert_eq!(bounds, vec![0.5, 0.7, 0.8999999999999999, 0.95, 1.0]);
        let variants = [
            ("a", 50.0),
            ("b", 20.0),
            ("c", 20.0),
            ("d", 5.0),
            ("e", 5.0),
        ];
        let mut counts = std::collections::HashMap::new();
        for i in 0..10_000 {
            *counts
                .entry(variant("mv", &format!("distinct_id_{i}"), variants).unwrap())
                .or_insert(0) += 1;
        }
        let a = counts["a"] as f64 / 10_000.0;
        assert!((0.47..0.53).contains(&a), "{a}");
        assert_eq!(
            variant("mv", "x", [("a", 10.0)]).is_none(),
            bucket("mv", "x", "variant") >= 0.1
        );
    }
}
