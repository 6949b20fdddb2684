use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::ProjectId;

/// Something about an accepted event that a user should know: the event was
/// stored, but part of it could not be applied.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IngestionWarning {
    pub project_id: ProjectId,
    pub kind: WarningKind,
    pub details: Value,
    pub timestamp: DateTime<Utc>,
}

/// The kinds of ingestion warning; names follow PostHog's where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum WarningKind {
    CannotMergeWithIllegalDistinctId,
    CannotMergeAlreadyIdentified,
    GroupTypeLimitReached,
    GroupKeyTooLong,
    InvalidGroupKey,
    /// `$groups` is not an object of type → key.
    InvalidGroups,
    /// `$group_set` of a `$groupidentify` is not an object.
    InvalidGroupSet,
    InvalidProcessPersonProfile,
    InvalidEventWhenProcessPersonProfileIsFalse,
    IgnoredInvalidTimestamp,
    /// Recorded by versions that moved far-future events to "now"; such
    /// events are now refused with [`WarningKind::EventTimestampOutOfRange`].
    EventTimestampInFuture,
    PersonPropertiesSizeViolation,
    /// An event dated before 2000 or more than 23 hours ahead: not stored.
    EventTimestampOutOfRange,
    /// A `$groupidentify` that would make the group's properties larger
    /// than persons may be: the group was left unchanged.
    GroupPropertiesSizeViolation,
}

impl WarningKind {
    pub const ALL: [WarningKind; 14] = [
        Self::CannotMergeWithIllegalDistinctId,
        Self::CannotMergeAlreadyIdentified,
        Self::GroupTypeLimitReached,
        Self::GroupKeyTooLong,
        Self::InvalidGroupKey,
        Self::InvalidGroups,
        Self::InvalidGroupSet,
        Self::InvalidProcessPersonProfile,
        Self::InvalidEventWhenProcessPersonProfileIsFalse,
        Self::IgnoredInvalidTimestamp,
        Self::EventTimestampInFuture,
        Self::PersonPropertiesSizeViolation,
        Self::EventTimestampOutOfRange,
        Self::GroupPropertiesSizeViolation,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CannotMergeWithIllegalDistinctId => "cannot_merge_with_illegal_distinct_id",
            Self::CannotMergeAlreadyIdentified => "cannot_merge_already_identified",
            Self::GroupTypeLimitReached => "group_type_limit_reached",
            Self::GroupKeyTooLong => "group_key_too_long",
            Self::InvalidGroupKey => "invalid_group_key",
            Self::InvalidGroups => "invalid_groups",
            Self::InvalidGroupSet => "invalid_group_set",
            Self::InvalidProcessPersonProfile => "invalid_process_person_profile",
            Self::InvalidEventWhenProcessPersonProfileIsFalse => {
                "invalid_event_when_process_person_profile_is_false"
            }
            Self::IgnoredInvalidTimestamp => "ignored_invalid_timestamp",
            Self::EventTimestampInFuture => "event_timestamp_in_future",
            Self::PersonPropertiesSizeViolation => "person_properties_size_violation",
            Self::EventTimestampOutOfRange => "event_timestamp_out_of_range",
            Self::GroupPropertiesSizeViolation => "group_properties_size_violation",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in WarningKind::ALL {
            assert_eq!(WarningKind::parse(kind.as_str()), Some(kind));
        }
    }
}
