//! A feature flag as PostHog stores and serves it (spec/flags.md §2), and
//! the checks a definition must pass before it is saved.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::properties::{FilterKind, Operator, PropertyFilter};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureFlag {
    #[serde(default)]
    pub id: i64,
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub filters: FlagFilters,
    #[serde(default)]
    pub ensure_experience_continuity: bool,
    #[serde(default)]
    pub version: i64,
}

fn yes() -> bool {
    true
}

/// Treats an explicit `null` like an absent field.
fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<u8>>, D::Error> {
    Ok(Some(Option::deserialize(deserializer)?))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlagFilters {
    /// Release conditions, in the order they are tried.
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<ConditionSet>,
    #[serde(default)]
    pub multivariate: Option<Multivariate>,
    /// `Some(i)`: the flag is rolled out to groups of type `i`, not persons.
    #[serde(default)]
    pub aggregation_group_type_index: Option<u8>,
    /// `"true"` or a variant key → payload (usually a JSON-encoded string).
    #[serde(default, deserialize_with = "null_as_default")]
    pub payloads: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_groups: Option<Vec<ConditionSet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_enrollment: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<Holdout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucketing_identifier: Option<BucketingIdentifier>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConditionSet {
    #[serde(default, deserialize_with = "null_as_default")]
    pub properties: Vec<PropertyFilter>,
    /// `None` means 100.
    #[serde(default)]
    pub rollout_percentage: Option<f64>,
    /// Everyone this set matches gets this variant.
    #[serde(default)]
    pub variant: Option<String>,
    /// Mixed targeting: absent uses the flag's aggregation, `null` means persons.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub aggregation_group_type_index: Option<Option<u8>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Multivariate {
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub rollout_percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holdout {
    pub id: i64,
    pub exclusion_percentage: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketingIdentifier {
    DistinctId,
    DeviceId,
}

impl FeatureFlag {
    pub fn variants(&self) -> &[Variant] {
        self.filters
            .multivariate
            .as_ref()
            .map_or(&[], |m| m.variants.as_slice())
    }

    pub fn is_variant(&self, key: &str) -> bool {
        self.variants().iter().any(|v| v.key == key)
    }

    /// Keys of the flags this one's conditions depend on.
    pub fn dependencies(&self) -> impl Iterator<Item = &str> {
        self.filters
            .groups
            .iter()
            .flat_map(|set| &set.properties)
            .filter(|f| f.kind == Some(FilterKind::Flag))
            .map(|f| f.key.as_str())
    }
}

/// Why a definition was refused: the field (dotted path) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub attr: String,
    pub detail: String,
}

fn invalid(attr: impl Into<String>, detail: impl Into<String>) -> Invalid {
    Invalid {
        attr: attr.into(),
        detail: detail.into(),
    }
}

/// Key rule PostHog enforces: letters, digits, `-` and `_`.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_percentage(attr: String, value: f64) -> Result<(), Invalid> {
    if (0.0..=100.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            attr,
            format!("must be between 0 and 100, not {value}"),
        ))
    }
}

impl FeatureFlag {
    /// Checks what can be checked on the flag alone, given the project's
    /// group type indexes. Dependencies are checked against the other flags
    /// by [`crate::FlagSet::check_dependencies`].
    pub fn validate(&self, group_type_indexes: &[u8]) -> Result<(), Invalid> {
        if !valid_key(&self.key) {
            return Err(invalid(
                "key",
                "only letters, numbers, hyphens (-) and underscores (_) are allowed",
            ));
        }
        let known_group = |attr: String, index: u8| {
            if group_type_indexes.contains(&index) {
                Ok(())
            } else {
                Err(invalid(
                    attr,
                    format!("group type index {index} does not exist in this project"),
                ))
            }
        };
        if let Some(index) = self.filters.aggregation_group_type_index {
            known_group("filters.aggregation_group_type_index".into(), index)?;
        }
        let variants = self.variants();
        for (i, variant) in variants.iter().enumerate() {
            let attr = format!("filters.multivariate.variants.{i}");
            if !valid_key(&variant.key) {
                return Err(invalid(
                    format!("{attr}.key"),
                    "a variant key needs letters, numbers, hyphens (-) or underscores (_)",
                ));
            }
            if variants[..i].iter().any(|v| v.key == variant.key) {
                return Err(invalid(
                    format!("{attr}.key"),
                    format!("variant key {:?} appears twice", variant.key),
                ));
            }
            check_percentage(
                format!("{attr}.rollout_percentage"),
                variant.rollout_percentage,
            )?;
        }
        if !variants.is_empty() {
            let total: f64 = variants.iter().map(|v| v.rollout_percentage).sum();
            if (total - 100.0).abs() > 1e-9 {
                return Err(invalid(
                    "filters.multivariate.variants",
                    format!("variant rollout percentages must sum to 100, not {total}"),
                ));
            }
        }
        if let Some(holdout) = &self.filters.holdout {
            check_percentage(
                "filters.holdout.exclusion_percentage".into(),
                holdout.exclusion_percentage,
            )?;
        }
        let sets = self.filters.groups.iter().map(|s| ("groups", s));
        let super_sets = self
            .filters
            .super_groups
            .iter()
            .flatten()
            .map(|s| ("super_groups", s));
        for (i, (list, set)) in sets.chain(super_sets).enumerate() {
            let attr = format!("filters.{list}.{i}");
            if let Some(p) = set.rollout_percentage {
                check_percentage(format!("{attr}.rollout_percentage"), p)?;
            }
            if let Some(variant) = &set.variant {
                if !self.is_variant(variant) {
                    return Err(invalid(
                        format!("{attr}.variant"),
                        format!("{variant:?} is not one of this flag's variants"),
                    ));
                }
            }
            if let Some(Some(index)) = set.aggregation_group_type_index {
                known_group(format!("{attr}.aggregation_group_type_index"), index)?;
            }
            for (j, filter) in set.properties.iter().enumerate() {
                validate_filter(&format!("{attr}.properties.{j}"), filter, &known_group)?;
            }
        }
        Ok(())
    }
}

fn validate_filter(
    attr: &str,
    filter: &PropertyFilter,
    known_group: &dyn Fn(String, u8) -> Result<(), Invalid>,
) -> Result<(), Invalid> {
    use Operator::*;
    let operator_attr = format!("{attr}.operator");
    match filter.kind {
        Some(FilterKind::Cohort) => {
            return Err(invalid(
                format!("{attr}.type"),
                "cohort filters are not supported: Cairn has no cohorts",
            ))
        }
        Some(FilterKind::Flag) => {
            if filter.operator != FlagEvaluatesTo {
                return Err(invalid(
                    operator_attr,
                    "a flag dependency needs the operator flag_evaluates_to",
                ));
            }
            return match &filter.value {
                Some(Value::Bool(_)) | Some(Value::String(_)) => Ok(()),
                _ => Err(invalid(
                    format!("{attr}.value"),
                    "a flag dependency's value is true, false or a variant key",
                )),
            };
        }
        Some(FilterKind::Group) => match filter.group_type_index {
            Some(index) => known_group(format!("{attr}.group_type_index"), index)?,
            None => {
                return Err(invalid(
                    format!("{attr}.group_type_index"),
                    "a group property filter needs group_type_index",
                ))
            }
        },
        Some(FilterKind::Person) | None => {}
    }
    if filter.key.is_empty() {
        return Err(invalid(format!("{attr}.key"), "must not be empty"));
    }
    match filter.operator {
        In | NotIn | FlagEvaluatesTo => Err(invalid(
            operator_attr,
            "this operator only applies to cohort or flag filters",
        )),
        IsSet | IsNotSet => Ok(()),
        _ if filter.value.is_none() => Err(invalid(
            format!("{attr}.value"),
            "this operator needs a value",
        )),
        Regex | NotRegex => {
            let pattern = filter.value.as_ref().and_then(Value::as_str).unwrap_or("");
            fancy_regex::Regex::new(pattern)
                .map(|_| ())
                .map_err(|e| invalid(format!("{attr}.value"), format!("invalid regex: {e}")))
        }
        Between | NotBetween => match filter.value.as_ref().and_then(Value::as_array) {
            Some(bounds) if bounds.len() == 2 => Ok(()),
            _ => Err(invalid(format!("{attr}.value"), "between needs [min, max]")),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag(filters: Value) -> FeatureFlag {
        serde_json::from_value(json!({"key": "beta", "filters": filters})).unwrap()
    }

    fn refusal(filters: Value) -> Invalid {
        flag(filters).validate(&[0]).unwrap_err()
    }

    #[test]
    fn condition_aggregation_tells_absent_from_null() {
        let f = flag(json!({"groups": [
            {"properties": []},
            {"properties": [], "aggregation_group_type_index": null},
            {"properties": [], "aggregation_group_type_index": 0}
        ]}));
        let got: Vec<_> = f
            .filters
            .groups
            .iter()
            .map(|g| g.aggregation_group_type_index)
            .collect();
        assert_eq!(got, [None, Some(None), Some(Some(0))]);
        let back = serde_json::to_value(&f.filters.groups[0]).unwrap();
        assert!(back.get("aggregation_group_type_index").is_none());
    }

    #[test]
    fn refusals_name_the_field() {
        let variants = |a, b| {
            json!({"multivariate": {"variants": [
            {"key": "a", "rollout_percentage": a}, {"key": "b", "rollout_percentage": b}]}})
        };
        assert_eq!(
            refusal(variants(50, 40)).attr,
            "filters.multivariate.variants"
        );
        let mut override_unknown = variants(50, 50);
        override_unknown["groups"] = json!([{"properties": [], "variant": "c"}]);
        assert_eq!(refusal(override_unknown).attr, "filters.groups.0.variant");
        assert_eq!(
            refusal(json!({"aggregation_group_type_index": 3})).attr,
            "filters.aggregation_group_type_index"
        );
        assert_eq!(
            refusal(json!({"groups": [{"properties": [{"key": "id", "value": 4, "type": "cohort", "operator": "in"}]}]})).attr,
            "filters.groups.0.properties.0.type"
        );
        assert_eq!(
            refusal(json!({"groups": [{"properties": [{"key": "e", "value": "(", "operator": "regex"}]}]})).attr,
            "filters.groups.0.properties.0.value"
        );
        assert_eq!(
            refusal(json!({"groups": [{"rollout_percentage": 101}]})).attr,
            "filters.groups.0.rollout_percentage"
        );
        let bad_key: FeatureFlag = serde_json::from_value(json!({"key": "no spaces"})).unwrap();
        assert_eq!(bad_key.validate(&[]).unwrap_err().attr, "key");
    }

    #[test]
    fn unknown_operators_are_refused_when_parsed() {
        let err = serde_json::from_value::<FeatureFlag>(json!({"key": "k", "filters": {"groups": [
            {"properties": [{"key": "email", "value": "x", "operator": "sounds_like"}]}]}}))
        .unwrap_err();
        assert!(err.to_string().contains("sounds_like"), "{err}");
    }
}
