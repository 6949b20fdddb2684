//! Property-based fuzzing of the trend formula parser: whatever text
//! arrives, it answers (a formula or an error naming the field) quickly and
//! never panics or overflows its stack, and what it accepts evaluates to a
//! finite number. Runs a bounded number of cases in CI.

use std::time::{Duration, Instant};

use cairn_query::formula::{Formula, MAX_FORMULA_LENGTH};
use proptest::prelude::*;

/// 5 000 cases per property in CI (about a second); `PROPTEST_CASES=N`
/// for a longer hunt.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    ProptestConfig::with_cases(cases)
}

/// Text made mostly of what formulas are made of, so that many cases get
/// deep into the parser, with the odd stranger character.
fn formula_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("A".to_string()),
        Just("b".to_string()),
        Just("Z".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("-".to_string()),
        Just("+".to_string()),
        Just("*".to_string()),
        Just("**".to_string()),
        Just("/".to_string()),
        Just("%".to_string()),
        Just("^".to_string()),
        Just(" ".to_string()),
        "[0-9.]{1,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..1_500).prop_map(|pieces| pieces.concat())
}

fn check(text: &str) {
    let started = Instant::now();
    let values = [1.5, -2.0, 0.0];
    match Formula::parse(text, values.len(), "trendsFilter.formula") {
        Ok(formula) => {
            assert!(text.chars().count() <= MAX_FORMULA_LENGTH);
            assert!(formula.eval(&values).is_finite(), "{text:?}");
        }
        Err(err) => assert!(
            err.to_string().starts_with("trendsFilter.formula: "),
            "{err}"
        ),
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{} characters took {:?}",
        text.len(),
        started.elapsed()
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn formula_like_text_never_panics(text in formula_text()) {
        check(&text);
    }

    #[test]
    fn any_text_never_panics(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn runs_of_one_character_never_overflow(c in prop::sample::select(vec!['(', '-', '+', ')', 'A', '*']), n in 0usize..400_000) {
        check(&c.to_string().repeat(n));
    }
}
