//! The project a query runs in: its id, clock, timezone, week start and
//! group types, as plain values (the caller reads them from its catalog).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use cairn_core::ProjectId;
pub use cairn_store::dialect::WeekStart;

use crate::budget::Budget;
use crate::error::{QueryError, Result};

#[derive(Debug, Clone)]
pub struct ProjectContext {
    pub project: ProjectId,
    pub timezone: Tz,
    pub week_start: WeekStart,
    /// `(index, name)` of every group type the project has.
    pub group_types: Vec<(u8, String)>,
    /// "Now" for relative dates; fixed per query so every part agrees.
    pub now: DateTime<Utc>,
    /// Whether any person of the project was merged into another; without
    /// merges an event's stored person is its person, with no lookup.
    pub person_overrides: bool,
    /// The query's time limit and cancel flag.
    pub budget: Budget,
}

impl ProjectContext {
    /// `now` is the query's "now" (the server's clock), fixed for all of it.
    pub fn new(
        project: ProjectId,
        timezone: &str,
        week_start_day: i16,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            project,
            timezone: timezone.parse().unwrap_or(Tz::UTC),
            week_start: if week_start_day == 1 {
                WeekStart::Monday
            } else {
                WeekStart::Sunday
            },
            group_types: Vec::new(),
            now,
            person_overrides: true,
            budget: Budget::unlimited(),
        }
    }

    /// Checks that group type `index`, named at `field`, exists.
    pub fn group_type(&self, index: u8, field: &str) -> Result<u8> {
        if self.group_types.iter().any(|(i, _)| *i == index) {
            Ok(index)
        } else {
            Err(QueryError::invalid(
                field,
                format!("this project has no group type with index {index}"),
            ))
        }
    }
}
