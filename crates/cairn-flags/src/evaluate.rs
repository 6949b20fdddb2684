//! Evaluating flags for one request the way PostHog's server does
//! (spec/flags.md §3, §4, §6): enrollment, holdout, condition sets in
//! stored order, variants, payloads, reasons and flag dependencies.

use std::collections::{BTreeMap, HashMap};

use cairn_core::names::property;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::flag::{BucketingIdentifier, ConditionSet, FeatureFlag};
use crate::hash;
use crate::properties::{self, FilterKind, PropertyFilter};

/// A group the request is about: its key and its properties (stored ∪ sent,
/// with `$group_key`).
#[derive(Debug, Clone, Default)]
pub struct GroupSubject {
    pub key: String,
    pub properties: Map<String, Value>,
}

/// Everything one evaluation reads.
#[derive(Debug, Clone)]
pub struct Subject {
    pub distinct_id: String,
    /// Stored ∪ sent person properties, with `distinct_id`.
    pub person_properties: Map<String, Value>,
    /// By group type index.
    pub groups: BTreeMap<u8, GroupSubject>,
    pub device_id: Option<String>,
    /// What experience-continuity flags hash instead of the distinct id.
    pub continuity_key: Option<String>,
    /// Hash keys stored for this person by flag key (they win over
    /// `continuity_key`): the experience chosen before identification.
    pub continuity_overrides: HashMap<String, String>,
    /// The project's timezone, for naive dates in filters.
    pub timezone: Tz,
    /// When the evaluation happens, for relative dates in filters: the
    /// caller's clock, so one request reads one instant.
    pub now: DateTime<Utc>,
}

/// Who builds a subject: the server and an SDK differ in one rule of
/// spec/flags.md §3.3, whether the request's distinct id overwrites a sent
/// `distinct_id` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `/flags`: always sets `distinct_id`.
    Server,
    /// Local evaluation: sets it only where the caller did not.
    Sdk,
}

/// The person property that carries the request's distinct id.
const DISTINCT_ID: &str = "distinct_id";

impl Subject {
    /// The subject of a request (spec/flags.md §3.3) evaluated at `now`: the
    /// person's stored properties overlaid with the sent ones (sent win),
    /// with `distinct_id`.
    pub fn new(
        site: Site,
        distinct_id: impl Into<String>,
        stored: Option<Map<String, Value>>,
        sent: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Self {
        let distinct_id = distinct_id.into();
        let mut person_properties = stored.unwrap_or_default();
        person_properties.extend(sent);
        let id = Value::String(distinct_id.clone());
        match site {
            Site::Server => {
                person_properties.insert(DISTINCT_ID.into(), id);
            }
            Site::Sdk => {
                person_properties.entry(DISTINCT_ID).or_insert(id);
            }
        }
        Self {
            distinct_id,
            person_properties,
            groups: BTreeMap::new(),
            device_id: None,
            continuity_key: None,
            continuity_overrides: HashMap::new(),
            timezone: Tz::UTC,
            now,
        }
    }

    /// A subject of sent person properties only, as an SDK builds it.
    pub fn person(
        distinct_id: impl Into<String>,
        properties: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Self {
        Self::new(Site::Sdk, distinct_id, None, properties, now)
    }

    /// Adds the group of type `index` keyed `key`: its stored properties
    /// overlaid with the sent ones, and `$group_key`.
    pub fn add_group(
        &mut self,
        index: u8,
        key: String,
        stored: Option<Map<String, Value>>,
        sent: Option<Map<String, Value>>,
    ) {
        let mut properties = stored.unwrap_or_default();
        properties.extend(sent.unwrap_or_default());
        properties.insert(property::GROUP_KEY.into(), Value::String(key.clone()));
        self.groups.insert(index, GroupSubject { key, properties });
    }
}

/// Why a flag has its value; ordered by PostHog's priority for non-matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    SuperConditionValue,
    HoldoutConditionValue,
    ConditionMatch,
    OutOfRolloutBound,
    NoConditionMatch,
    NoGroupType,
    FlagDisabled,
    MissingDependency,
}

impl Reason {
    fn score(self) -> i8 {
        match self {
            Self::SuperConditionValue => 6,
            Self::HoldoutConditionValue => 5,
            Self::ConditionMatch => 4,
            Self::OutOfRolloutBound => 3,
            Self::NoConditionMatch => 2,
            Self::NoGroupType => 1,
            Self::FlagDisabled => 0,
            Self::MissingDependency => -1,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::SuperConditionValue => "super_condition_value",
            Self::HoldoutConditionValue => "holdout_condition_value",
            Self::ConditionMatch => "condition_match",
            Self::OutOfRolloutBound => "out_of_rollout_bound",
            Self::NoConditionMatch => "no_condition_match",
            Self::NoGroupType => "no_group_type",
            Self::FlagDisabled => "flag_disabled",
            Self::MissingDependency => "missing_dependency",
        }
    }
}

/// One flag's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub enabled: bool,
    pub variant: Option<String>,
    pub reason: Reason,
    pub condition_index: Option<usize>,
    /// The stored payload for the value, when the flag is enabled.
    pub payload: Option<Value>,
    /// Some group conditions were skipped for want of a group in the request.
    pub group_conditions_skipped: bool,
}

impl Evaluation {
    fn off(reason: Reason, condition_index: Option<usize>) -> Self {
        Self {
            enabled: false,
            variant: None,
            reason,
            condition_index,
            payload: None,
            group_conditions_skipped: false,
        }
    }

    /// The flag's value as SDKs see it: the variant, else the boolean.
    pub fn value(&self) -> Value {
        match &self.variant {
            Some(variant) => Value::String(variant.clone()),
            None => Value::Bool(self.enabled),
        }
    }

    /// PostHog's human-readable reason.
    pub fn description(&self) -> String {
        match self.reason {
            Reason::SuperConditionValue => "Super condition value".into(),
            Reason::HoldoutConditionValue => "Holdout condition value".into(),
            Reason::ConditionMatch => format!(
                "Matched condition set {}",
                self.condition_index.map_or(0, |i| i + 1)
            ),
            Reason::OutOfRolloutBound => "Out of rollout bound".into(),
            Reason::NoConditionMatch if self.group_conditions_skipped => "No matching condition set (group conditions were not evaluated because no group type was provided)".into(),
            Reason::NoConditionMatch => "No matching condition set".into(),
            Reason::NoGroupType => "No group type".into(),
            Reason::FlagDisabled => "Feature flag is disabled".into(),
            Reason::MissingDependency => {
                "Flag cannot be evaluated due to missing dependency".into()
            }
        }
    }
}

/// The longest chain of flags depending on flags (a flag without
/// dependencies has depth 0). Evaluation recurses once per level.
pub const MAX_DEPENDENCY_DEPTH: usize = 32;
/// The most flags one flag may depend on, directly or through others:
/// SDKs receive that many keys in each of its dependency chains.
pub const MAX_DEPENDENCIES: usize = 100;

/// A project's flags, indexed for evaluation. Deleted flags are left out.
#[derive(Debug, Clone, Default)]
pub struct FlagSet {
    flags: Vec<FeatureFlag>,
    by_key: HashMap<String, usize>,
    /// Per flag: the flags it depends on, dependencies first and ending with
    /// itself; or why it cannot be evaluated (a missing dependency, a cycle,
    /// a chain too deep or too wide, itself or further down).
    chains: Vec<Result<Vec<usize>, DependencyProblem>>,
}

/// Local evaluation (an SDK holding the definitions but only the properties
/// its caller passed) cannot give the server's answer: a filter reads a
/// property that was not passed, a group's properties are missing, a cohort
/// or an experience-continuity flag needs stored state. Ask the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inconclusive;

impl std::fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the flag needs the server's stored properties to be decided")
    }
}

impl std::error::Error for Inconclusive {}

/// The server knows every property, so its evaluations are never inconclusive.
fn decided(result: Result<Evaluation, Inconclusive>) -> Evaluation {
    result.unwrap_or_else(|Inconclusive| unreachable!("only local evaluation is inconclusive"))
}

/// A dependency problem, for refusing a definition that would create it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyProblem {
    Missing {
        flag: String,
        dependency: String,
    },
    Cycle {
        flag: String,
    },
    /// `flag` heads a chain of dependencies longer than [`MAX_DEPENDENCY_DEPTH`].
    TooDeep {
        flag: String,
        depth: usize,
    },
    /// `flag` depends on more than [`MAX_DEPENDENCIES`] flags.
    TooMany {
        flag: String,
        count: usize,
    },
}

impl std::fmt::Display for DependencyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { flag, dependency } => {
                write!(f, "flag {flag:?} depends on {dependency:?}, which does not exist")
            }
            Self::Cycle { flag } => {
                write!(f, "flag dependencies would form a cycle through {flag:?}")
            }
            Self::TooDeep { flag, depth } => write!(
                f,
                "flag {flag:?} would head a chain of {depth} flags depending on flags, more than the limit of {MAX_DEPENDENCY_DEPTH}"
            ),
            Self::TooMany { flag, count } => write!(
                f,
                "flag {flag:?} would depend on {count} flags (directly or through others), more than the limit of {MAX_DEPENDENCIES}"
            ),
        }
    }
}

/// Where the walk over dependencies stands with one flag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    /// On the current path: meeting it again closes a cycle.
    OnPath,
    Done,
}

impl FlagSet {
    pub fn new(flags: impl IntoIterator<Item = FeatureFlag>) -> Self {
        let flags: Vec<_> = flags.into_iter().filter(|f| !f.deleted).collect();
        let by_key = flags
            .iter()
            .enumerate()
            .map(|(i, f)| (f.key.clone(), i))
            .collect();
        let mut set = Self {
            flags,
            by_key,
            chains: Vec::new(),
        };
        set.chains = set.resolve_dependencies();
        set
    }

    pub fn flags(&self) -> &[FeatureFlag] {
        &self.flags
    }

    pub fn get(&self, key: &str) -> Option<&FeatureFlag> {
        self.by_key.get(key).map(|&i| &self.flags[i])
    }

    /// The first dependency problem among the flags, if any.
    pub fn check_dependencies(&self) -> Result<(), DependencyProblem> {
        self.chains
            .iter()
            .find_map(|chain| chain.as_ref().err().cloned())
            .map_or(Ok(()), Err)
    }

    /// The first dependency problem of these flags that `before` (the same
    /// project without the change being saved) did not have: a change may
    /// not break a flag, but flags stored broken do not block other changes.
    pub fn check_dependencies_since(&self, before: &FlagSet) -> Result<(), DependencyProblem> {
        let was_broken = |key: &str| {
            before
                .by_key
                .get(key)
                .is_some_and(|&i| before.chains[i].is_err())
        };
        self.chains
            .iter()
            .zip(&self.flags)
            .filter(|(_, flag)| !was_broken(&flag.key))
            .find_map(|(chain, _)| chain.as_ref().err().cloned())
            .map_or(Ok(()), Err)
    }

    /// Each flag's dependency chain or problem, in one walk that visits
    /// every flag once: iterative (a long chain stored before the limits
    /// existed cannot overflow the stack) and memoised (a flag depended on
    /// by many is resolved once, not once per path to it).
    fn resolve_dependencies(&self) -> Vec<Result<Vec<usize>, DependencyProblem>> {
        let n = self.flags.len();
        let dependencies: Vec<Vec<Result<usize, &str>>> = self
            .flags
            .iter()
            .map(|flag| {
                flag.dependencies()
                    .map(|key| self.by_key.get(key).copied().ok_or(key))
                    .collect()
            })
            .collect();
        let mut visit = vec![Visit::New; n];
        let mut depth = vec![0usize; n];
        let mut chains: Vec<Result<Vec<usize>, DependencyProblem>> = vec![Ok(Vec::new()); n];
        for root in 0..n {
            if visit[root] != Visit::New {
                continue;
            }
            visit[root] = Visit::OnPath;
            // (flag, how many of its dependencies were looked at)
            let mut path = vec![(root, 0usize)];
            while let Some((i, next)) = path.last_mut() {
                let i = *i;
                if let Some(&dependency) = dependencies[i].get(*next) {
                    *next += 1;
                    if let Ok(j) = dependency {
                        if visit[j] == Visit::New {
                            visit[j] = Visit::OnPath;
                            path.push((j, 0));
                        }
                    }
                    continue;
                }
                path.pop();
                let resolved = self.resolve_one(i, &dependencies[i], &visit, &depth, &chains);
                if let Ok((d, _)) = &resolved {
                    depth[i] = *d;
                }
                chains[i] = resolved.map(|(_, chain)| chain);
                visit[i] = Visit::Done;
            }
        }
        chains
    }

    /// Flag `i`'s depth and chain once all its dependencies are resolved.
    fn resolve_one(
        &self,
        i: usize,
        dependencies: &[Result<usize, &str>],
        visit: &[Visit],
        depth: &[usize],
        chains: &[Result<Vec<usize>, DependencyProblem>],
    ) -> Result<(usize, Vec<usize>), DependencyProblem> {
        let key = &self.flags[i].key;
        let mut deepest = 0;
        let mut chain: Vec<usize> = Vec::new();
        for dependency in dependencies {
            let j = match dependency {
                Err(missing) => {
                    return Err(DependencyProblem::Missing {
                        flag: key.clone(),
                        dependency: missing.to_string(),
                    })
                }
                Ok(j) => *j,
            };
            if visit[j] == Visit::OnPath {
                return Err(DependencyProblem::Cycle {
                    flag: self.flags[j].key.clone(),
                });
            }
            let theirs = chains[j].as_ref().map_err(Clone::clone)?;
            deepest = deepest.max(depth[j] + 1);
            for &k in theirs {
                if !chain.contains(&k) {
                    chain.push(k);
                }
            }
            if chain.len() > MAX_DEPENDENCIES {
                return Err(DependencyProblem::TooMany {
                    flag: key.clone(),
                    count: chain.len(),
                });
            }
        }
        if deepest > MAX_DEPENDENCY_DEPTH {
            return Err(DependencyProblem::TooDeep {
                flag: key.clone(),
                depth: deepest,
            });
        }
        chain.push(i);
        Ok((deepest, chain))
    }

    /// Whether flag `i` cannot be evaluated (its chain is a problem).
    fn broken(&self, i: usize) -> bool {
        self.chains[i].is_err()
    }

    /// The order SDKs evaluate `key`'s dependencies in, ending with `key`;
    /// empty when they cannot be evaluated (missing, cyclic, too deep or
    /// too many).
    pub fn dependency_chain(&self, key: &str) -> Vec<String> {
        match self.by_key.get(key).map(|&i| &self.chains[i]) {
            Some(Ok(chain)) => chain.iter().map(|&k| self.flags[k].key.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// The definitions SDKs evaluate locally: every flag, with each
    /// dependency filter's `dependency_chain` filled in.
    pub fn definitions(&self) -> Vec<FeatureFlag> {
        let mut flags = self.flags.clone();
        for flag in &mut flags {
            for set in &mut flag.filters.groups {
                for filter in &mut set.properties {
                    if filter.kind == Some(FilterKind::Flag) {
                        filter.dependency_chain = Some(self.dependency_chain(&filter.key));
                    }
                }
            }
        }
        flags
    }

    /// One flag, or `None` if the project has no such (undeleted) flag.
    pub fn evaluate(&self, key: &str, subject: &Subject) -> Option<Evaluation> {
        let &i = self.by_key.get(key)?;
        Some(decided(Evaluator::new(self, subject, false).flag(i)))
    }

    /// Every active flag (or those in `only`), in definition order.
    pub fn evaluate_all<'a>(
        &'a self,
        subject: &Subject,
        only: Option<&[String]>,
    ) -> Vec<(&'a FeatureFlag, Evaluation)> {
        let mut evaluator = Evaluator::new(self, subject, false);
        (0..self.flags.len())
            .filter(|&i| self.flags[i].active)
            .filter(|&i| only.is_none_or(|keys| keys.contains(&self.flags[i].key)))
            .map(|i| (&self.flags[i], decided(evaluator.flag(i))))
            .collect()
    }

    /// Like [`FlagSet::evaluate`], but `subject` holds only the properties
    /// the caller passed (an SDK's local evaluation): wherever the server's
    /// stored state could change the answer, the result is [`Inconclusive`].
    /// Inactive flags are decided (`false`), as the server would.
    pub fn evaluate_locally(
        &self,
        key: &str,
        subject: &Subject,
    ) -> Option<Result<Evaluation, Inconclusive>> {
        let &i = self.by_key.get(key)?;
        Some(Evaluator::new(self, subject, true).flag(i))
    }

    /// Every active flag evaluated locally, in definition order.
    pub fn evaluate_all_locally<'a>(
        &'a self,
        subject: &Subject,
    ) -> Vec<(&'a FeatureFlag, Result<Evaluation, Inconclusive>)> {
        let mut evaluator = Evaluator::new(self, subject, true);
        (0..self.flags.len())
            .filter(|&i| self.flags[i].active)
            .map(|i| (&self.flags[i], evaluator.flag(i)))
            .collect()
    }
}

/// One request's evaluation; remembers results so dependencies run once.
struct Evaluator<'a> {
    set: &'a FlagSet,
    subject: &'a Subject,
    done: Vec<Option<Evaluation>>,
    /// The subject holds only passed properties (SDK local evaluation).
    local: bool,
}

impl<'a> Evaluator<'a> {
    fn new(set: &'a FlagSet, subject: &'a Subject, local: bool) -> Self {
        Self {
            set,
            subject,
            done: Vec::new(),
            local,
        }
    }

    fn flag(&mut self, i: usize) -> Result<Evaluation, Inconclusive> {
        if let Some(Some(done)) = self.done.get(i) {
            return Ok(done.clone());
        }
        if !self.set.flags[i].active {
            Ok(Evaluation::off(Reason::FlagDisabled, None))
        } else if self.set.broken(i) {
            Ok(Evaluation::off(Reason::MissingDependency, None))
        } else {
            let set = self.set;
            self.evaluate(&set.flags[i])
        }
    }

    /// A dependency's result, kept for the other flags that read it (only
    /// dependencies are kept, so evaluating one plain flag allocates nothing).
    fn memoized(&mut self, i: usize) -> Result<Evaluation, Inconclusive> {
        let result = self.flag(i)?;
        if self.done.is_empty() {
            self.done.resize(self.set.flags.len(), None);
        }
        self.done[i] = Some(result.clone());
        Ok(result)
    }

    /// Whether `filter` holds for `properties`; locally, a property that was
    /// not passed may be stored on the server, so it decides nothing.
    fn holds(
        &self,
        filter: &PropertyFilter,
        properties: &Map<String, Value>,
    ) -> Result<bool, Inconclusive> {
        if self.local && !properties.contains_key(&filter.key) {
            return Err(Inconclusive);
        }
        Ok(properties::matches(
            filter,
            properties,
            self.subject.timezone,
            self.subject.now,
        ))
    }

    /// The identifier a set aggregated by `aggregation` hashes, and the
    /// properties it reads; `None` when the request lacks that group.
    fn target(
        &self,
        flag: &FeatureFlag,
        aggregation: Option<u8>,
    ) -> Option<(&'a str, &'a Map<String, Value>)> {
        let subject = self.subject;
        match aggregation {
            Some(index) => subject
                .groups
                .get(&index)
                .filter(|g| !g.key.is_empty())
                .map(|g| (g.key.as_str(), &g.properties)),
            None => {
                let id = if flag.ensure_experience_continuity {
                    subject
                        .continuity_overrides
                        .get(&flag.key)
                        .or(subject.continuity_key.as_ref())
                        .map_or(subject.distinct_id.as_str(), String::as_str)
                } else {
                    &subject.distinct_id
                };
                Some((id, &subject.person_properties))
            }
        }
    }

    fn evaluate(&mut self, flag: &FeatureFlag) -> Result<Evaluation, Inconclusive> {
        let filters = &flag.filters;
        let subject = self.subject;
        let person = &subject.person_properties;
        // The hash key an experience-continuity flag uses is stored server-side.
        if self.local && flag.ensure_experience_continuity {
            return Err(Inconclusive);
        }
        if filters.feature_enrollment == Some(true) {
            if let Some(enrolled) = person.get(&format!("$feature_enrollment/{}", flag.key)) {
                let enabled = enrolled == &Value::Bool(true) || enrolled == "true";
                return Ok(self.decided(flag, enabled, None, Reason::SuperConditionValue, Some(0)));
            }
            if self.local {
                return Err(Inconclusive);
            }
        } else if let Some(super_set) = filters.super_groups.as_ref().and_then(|s| s.first()) {
            if super_set
                .properties
                .iter()
                .any(|f| person.contains_key(&f.key))
            {
                let id = self.target(flag, None).map_or("", |(id, _)| id);
                let enabled =
                    self.condition(super_set, filters.aggregation_group_type_index, person)?
                        == Outcome::Match
                        && hash::in_rollout(&flag.key, id, super_set.rollout_percentage);
                return Ok(self.decided(flag, enabled, None, Reason::SuperConditionValue, Some(0)));
            }
            if self.local && !super_set.properties.is_empty() {
                return Err(Inconclusive);
            }
        }
        if let Some(holdout) = &filters.holdout {
            if let Some((id, _)) = self.target(flag, filters.aggregation_group_type_index) {
                let share = holdout.exclusion_percentage.clamp(0.0, 100.0);
                if share >= 100.0 || hash::holdout_bucket(id) <= share / 100.0 {
                    let variant = format!("holdout-{}", holdout.id);
                    return Ok(Evaluation {
                        enabled: true,
                        payload: filters.payloads.get(&variant).cloned(),
                        variant: Some(variant),
                        reason: Reason::HoldoutConditionValue,
                        condition_index: None,
                        group_conditions_skipped: false,
                    });
                }
            }
        }

        let mut best = (Reason::NoGroupType, None);
        let mut group_conditions_skipped = false;
        for (i, set) in filters.groups.iter().enumerate() {
            let aggregation = set
                .aggregation_group_type_index
                .unwrap_or(filters.aggregation_group_type_index);
            let outcome = match self.target(flag, aggregation) {
                None => {
                    group_conditions_skipped = true;
                    Reason::NoGroupType
                }
                Some(_)
                    if aggregation.is_none()
                        && filters.bucketing_identifier == Some(BucketingIdentifier::DeviceId)
                        && self.subject.device_id.as_deref().unwrap_or("").is_empty() =>
                {
                    Reason::OutOfRolloutBound
                }
                // Locally, an undecided set stops the walk: the server might
                // match it, and its variant or payload would win.
                Some((id, properties)) => match self.condition(set, aggregation, properties)? {
                    Outcome::NoMatch => Reason::NoConditionMatch,
                    Outcome::Match if !hash::in_rollout(&flag.key, id, set.rollout_percentage) => {
                        Reason::OutOfRolloutBound
                    }
                    Outcome::Match => {
                        let variant = match &set.variant {
                            Some(v) if flag.is_variant(v) => Some(v.clone()),
                            _ => hash::variant(
                                &flag.key,
                                id,
                                flag.variants()
                                    .iter()
                                    .map(|v| (v.key.as_str(), v.rollout_percentage)),
                            )
                            .map(str::to_string),
                        };
                        return Ok(self.decided(
                            flag,
                            true,
                            variant,
                            Reason::ConditionMatch,
                            Some(i),
                        ));
                    }
                },
            };
            if outcome.score() >= best.0.score() {
                best = (outcome, Some(i));
            }
        }
        Ok(Evaluation {
            group_conditions_skipped,
            ..Evaluation::off(best.0, best.1)
        })
    }

    fn decided(
        &self,
        flag: &FeatureFlag,
        enabled: bool,
        variant: Option<String>,
        reason: Reason,
        condition_index: Option<usize>,
    ) -> Evaluation {
        let payload = enabled
            .then(|| {
                flag.filters
                    .payloads
                    .get(variant.as_deref().unwrap_or("true"))
                    .cloned()
            })
            .flatten();
        Evaluation {
            enabled,
            variant,
            reason,
            condition_index,
            payload,
            group_conditions_skipped: false,
        }
    }

    /// Whether all of a set's filters hold (rollout aside).
    fn condition(
        &mut self,
        set: &ConditionSet,
        aggregation: Option<u8>,
        own: &Map<String, Value>,
    ) -> Result<Outcome, Inconclusive> {
        for filter in &set.properties {
            let holds = match filter.kind {
                Some(FilterKind::Flag) => self.dependency(filter)?,
                Some(FilterKind::Cohort) if self.local => return Err(Inconclusive),
                Some(FilterKind::Cohort) => false,
                Some(FilterKind::Person) => self.holds(filter, &self.subject.person_properties)?,
                Some(FilterKind::Group) => {
                    let index = filter.group_type_index.or(aggregation);
                    let props = index.and_then(|i| self.subject.groups.get(&i));
                    match props {
                        Some(group) => self.holds(filter, &group.properties)?,
                        None if self.local => return Err(Inconclusive),
                        None => filter.operator.rule().when_missing,
                    }
                }
                None => self.holds(filter, own)?,
            };
            if !holds {
                return Ok(Outcome::NoMatch);
            }
        }
        Ok(Outcome::Match)
    }

    /// `flag_evaluates_to`: true matches any enabled value, false a disabled
    /// one, a string exactly that variant.
    fn dependency(&mut self, filter: &PropertyFilter) -> Result<bool, Inconclusive> {
        let Some(&i) = self.set.by_key.get(&filter.key) else {
            return Ok(false);
        };
        let result = self.memoized(i)?;
        Ok(match (&filter.value, &result.variant) {
            (Some(Value::Bool(expected)), _) => *expected == result.enabled,
            (Some(Value::String(expected)), Some(variant)) => expected == variant,
            _ => false,
        })
    }
}

#[derive(PartialEq)]
enum Outcome {
    Match,
    NoMatch,
}

#[cfg(test)]
mod tests;
