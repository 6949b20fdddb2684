//! Feature-flag evaluation that gives PostHog's answers for PostHog's flag
//! definitions. Pure: no I/O, so the server and the Rust SDK share it.

pub mod dates;
mod evaluate;
mod flag;
pub mod hash;
pub mod operators;
pub mod properties;
mod versions;

pub use evaluate::{
    DependencyProblem, Evaluation, FlagSet, GroupSubject, Inconclusive, Reason, Site, Subject,
    MAX_DEPENDENCIES, MAX_DEPENDENCY_DEPTH,
};
pub use flag::{
    BucketingIdentifier, ConditionSet, FeatureFlag, FlagFilters, Holdout, Invalid, Multivariate,
    Variant,
};
pub use operators::Operator;
pub use properties::{FilterKind, PropertyFilter};
