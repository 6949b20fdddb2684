//! The query JSON, in PostHog's schema (`posthog/schema.py`) so its docs
//! apply. A field Cairn does not read is refused unless `accepted` lists it
//! as harmless; values it cannot answer fail to parse; the error names the
//! field.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use cairn_flags::Operator;

/// Parsed once per request, so the size difference of variants is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum InsightQuery {
    TrendsQuery(TrendsQuery),
    FunnelsQuery(FunnelsQuery),
    RetentionQuery(RetentionQuery),
    LifecycleQuery(LifecycleQuery),
    StickinessQuery(StickinessQuery),
    PathsQuery(PathsQuery),
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DateRange {
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    #[serde(rename = "explicitDate")]
    pub explicit_date: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

/// A series or funnel step. Cairn has no actions, so only `EventsNode`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsNode {
    pub kind: Option<EventsNodeKind>,
    /// `null`: all events.
    pub event: Option<String>,
    pub name: Option<String>,
    pub custom_name: Option<String>,
    pub math: Option<Math>,
    pub math_property: Option<String>,
    pub math_property_type: Option<MathPropertyType>,
    pub math_group_type_index: Option<u8>,
    pub properties: Properties,
    #[serde(rename = "optionalInFunnel")]
    pub optional_in_funnel: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub enum EventsNodeKind {
    EventsNode,
}

impl EventsNode {
    /// The name shown for this series.
    pub fn display_name(&self) -> String {
        self.custom_name
            .clone()
            .or_else(|| self.name.clone())
            .or_else(|| self.event.clone())
            .unwrap_or_else(|| "All events".into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Math {
    Total,
    Dau,
    WeeklyActive,
    MonthlyActive,
    UniqueGroup,
    UniqueSession,
    Sum,
    Avg,
    Min,
    Max,
    Median,
    P75,
    P90,
    P95,
    P99,
    AvgCountPerActor,
    MinCountPerActor,
    MaxCountPerActor,
    MedianCountPerActor,
    P75CountPerActor,
    P90CountPerActor,
    P95CountPerActor,
    P99CountPerActor,
    FirstTimeForUser,
    FirstMatchingEventForUser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MathPropertyType {
    EventProperties,
    PersonProperties,
}

/// `properties`: a list of filters (ANDed) or a nested AND/OR group.
#[derive(Debug, Clone, Default)]
pub struct Properties(pub Option<PropertyNode>);

#[derive(Debug, Clone)]
pub enum PropertyNode {
    All(Vec<PropertyNode>),
    Any(Vec<PropertyNode>),
    Filter(Property),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Property {
    pub key: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default = "exact")]
    pub operator: Operator,
    #[serde(rename = "type", default = "event_kind")]
    pub kind: PropertyKind,
    #[serde(default)]
    pub group_type_index: Option<u8>,
}

fn exact() -> Operator {
    Operator::Exact
}

fn event_kind() -> PropertyKind {
    PropertyKind::Event
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyKind {
    Event,
    Person,
    Group,
}

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        property_node(value)
            .map(Properties)
            .map_err(serde::de::Error::custom)
    }
}

/// Reads filters and AND/OR groups, naming the position of a bad one.
fn property_node(value: Value) -> Result<Option<PropertyNode>, String> {
    let list = |values: Vec<Value>| -> Result<Vec<PropertyNode>, String> {
        let mut nodes = Vec::new();
        for (i, value) in values.into_iter().enumerate() {
            if let Some(node) = property_node(value).map_err(|e| format!("[{i}] {e}"))? {
                nodes.push(node);
            }
        }
        Ok(nodes)
    };
    match value {
        Value::Null => Ok(None),
        Value::Array(values) => Ok(Some(PropertyNode::All(list(values)?))),
        Value::Object(mut object) if object.contains_key("values") => {
            let any = match object.get("type").and_then(Value::as_str) {
                Some("OR") => true,
                Some("AND") | None => false,
                Some(other) => return Err(format!("group type `{other}` is not AND or OR")),
            };
            let Some(Value::Array(values)) = object.remove("values") else {
                return Err("`values` of a property group must be a list".into());
            };
            let nodes = list(values)?;
            Ok(Some(if any {
                PropertyNode::Any(nodes)
            } else {
                PropertyNode::All(nodes)
            }))
        }
        other => serde_json::from_value::<Property>(other)
            .map(|p| Some(PropertyNode::Filter(p)))
            .map_err(|e| e.to_string()),
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakdownFilter {
    pub breakdown: Option<Value>,
    pub breakdown_type: Option<BreakdownType>,
    pub breakdown_group_type_index: Option<u8>,
    pub breakdown_limit: Option<usize>,
    pub breakdown_hide_other_aggregation: Option<bool>,
    pub breakdown_normalize_url: Option<bool>,
    pub breakdowns: Option<Vec<BreakdownItem>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakdownItem {
    pub property: Value,
    #[serde(rename = "type", default)]
    pub kind: Option<BreakdownType>,
    #[serde(default)]
    pub group_type_index: Option<u8>,
    #[serde(default)]
    pub normalize_url: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakdownType {
    Event,
    Person,
    Group,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareFilter {
    pub compare: Option<bool>,
    pub compare_to: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrendsQuery {
    pub series: Vec<EventsNode>,
    pub interval: Option<Interval>,
    #[serde(rename = "dateRange")]
    pub date_range: DateRange,
    pub properties: Properties,
    #[serde(rename = "breakdownFilter")]
    pub breakdown_filter: BreakdownFilter,
    #[serde(rename = "trendsFilter")]
    pub trends_filter: TrendsFilter,
    #[serde(rename = "compareFilter")]
    pub compare_filter: CompareFilter,
    pub aggregation_group_type_index: Option<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrendsFilter {
    pub display: Option<Display>,
    pub formula: Option<String>,
    pub formulas: Option<Vec<String>>,
    #[serde(rename = "formulaNodes")]
    pub formula_nodes: Option<Vec<FormulaNode>>,
    #[serde(rename = "smoothingIntervals")]
    pub smoothing_intervals: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormulaNode {
    pub formula: String,
    #[serde(default)]
    pub custom_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Display {
    ActionsLineGraph,
    ActionsBar,
    ActionsUnstackedBar,
    ActionsStackedBar,
    ActionsAreaGraph,
    ActionsLineGraphCumulative,
    BoldNumber,
    ActionsPie,
    ActionsBarValue,
    ActionsTable,
    WorldMap,
    CalendarHeatmap,
}

impl Display {
    /// One aggregate over the whole range instead of a time series.
    pub fn is_total_value(self) -> bool {
        matches!(
            self,
            Self::BoldNumber
                | Self::ActionsPie
                | Self::ActionsBarValue
                | Self::ActionsTable
                | Self::WorldMap
                | Self::CalendarHeatmap
        )
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunnelsQuery {
    pub series: Vec<EventsNode>,
    pub interval: Option<Interval>,
    #[serde(rename = "dateRange")]
    pub date_range: DateRange,
    pub properties: Properties,
    pub aggregation_group_type_index: Option<u8>,
    #[serde(rename = "breakdownFilter")]
    pub breakdown_filter: BreakdownFilter,
    #[serde(rename = "funnelsFilter")]
    pub funnels_filter: FunnelsFilter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunnelsFilter {
    #[serde(rename = "funnelOrderType")]
    pub order: Option<FunnelOrder>,
    #[serde(rename = "funnelVizType")]
    pub viz: Option<FunnelViz>,
    #[serde(rename = "funnelWindowInterval")]
    pub window_interval: Option<u32>,
    #[serde(rename = "funnelWindowIntervalUnit")]
    pub window_unit: Option<WindowUnit>,
    pub exclusions: Vec<FunnelExclusion>,
    #[serde(rename = "breakdownAttributionType")]
    pub attribution: Option<Attribution>,
    #[serde(rename = "breakdownAttributionValue")]
    pub attribution_step: Option<usize>,
    #[serde(rename = "funnelFromStep")]
    pub from_step: Option<usize>,
    #[serde(rename = "funnelToStep")]
    pub to_step: Option<usize>,
    #[serde(rename = "binCount")]
    pub bin_count: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelOrder {
    Ordered,
    Strict,
    Unordered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelViz {
    Steps,
    TimeToConvert,
    Trends,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

impl WindowUnit {
    pub fn seconds(self) -> i64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
            Self::Week => 604_800,
            Self::Month => 31 * 86_400,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FunnelExclusion {
    pub node: EventsNode,
    pub from_step: usize,
    pub to_step: usize,
}

/// By hand: an `EventsNode` flattened by serde would ignore unknown fields.
impl<'de> Deserialize<'de> for FunnelExclusion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut object = serde_json::Map::deserialize(deserializer)?;
        let mut step = |key: &'static str| -> Result<usize, D::Error> {
            let value = object
                .remove(key)
                .ok_or_else(|| D::Error::missing_field(key))?;
            serde_json::from_value(value).map_err(|e| D::Error::custom(format!("{key}: {e}")))
        };
        let from_step = step("funnelFromStep")?;
        let to_step = step("funnelToStep")?;
        let node = serde_json::from_value(Value::Object(object)).map_err(D::Error::custom)?;
        Ok(Self {
            node,
            from_step,
            to_step,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    FirstTouch,
    LastTouch,
    AllEvents,
    Step,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionQuery {
    #[serde(rename = "dateRange")]
    pub date_range: DateRange,
    pub properties: Properties,
    pub aggregation_group_type_index: Option<u8>,
    #[serde(rename = "breakdownFilter")]
    pub breakdown_filter: BreakdownFilter,
    #[serde(rename = "retentionFilter")]
    pub retention_filter: RetentionFilter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionFilter {
    #[serde(rename = "targetEntity")]
    pub target_entity: Option<RetentionEntity>,
    #[serde(rename = "returningEntity")]
    pub returning_entity: Option<RetentionEntity>,
    #[serde(rename = "retentionType")]
    pub retention_type: Option<RetentionType>,
    pub period: Option<RetentionPeriod>,
    #[serde(rename = "totalIntervals")]
    pub total_intervals: Option<usize>,
    pub cumulative: Option<bool>,
    #[serde(rename = "minimumOccurrences")]
    pub minimum_occurrences: Option<u32>,
}

/// `{id: "<event name>", name, type: "events", properties}`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionEntity {
    pub id: Option<Value>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<RetentionEntityKind>,
    pub properties: Properties,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionEntityKind {
    Events,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionType {
    RetentionRecurring,
    RetentionFirstTime,
    RetentionFirstEverOccurrence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RetentionPeriod {
    Hour,
    Day,
    Week,
    Month,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleQuery {
    pub series: Vec<EventsNode>,
    pub interval: Option<Interval>,
    #[serde(rename = "dateRange")]
    pub date_range: DateRange,
    pub properties: Properties,
    pub aggregation_group_type_index: Option<u8>,
    #[serde(rename = "lifecycleFilter")]
    pub lifecycle_filter: LifecycleFilter,
}

/// Its fields are all presentation (`accepted`), so none is read.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleFilter {}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StickinessQuery {
    pub series: Vec<EventsNode>,
    pub interval: Option<Interval>,
    #[serde(rename = "intervalCount")]
    pub interval_count: Option<u32>,
    #[serde(rename = "dateRange")]
    pub date_range: DateRange,
    pub properties: Properties,
    #[serde(rename = "stickinessFilter")]
    pub stickiness_filter: StickinessFilter,
    #[serde(rename = "compareFilter")]
    pub compare_filter: CompareFilter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StickinessFilter {
    #[serde(rename = "computedAs")]
    pub computed_as: Option<StickinessComputation>,
    #[serde(rename = "stickinessCriteria")]
    pub criteria: Option<StickinessCriteria>,
}

/// An interval counts for an actor only if its number of matching events
/// there satisfies this (PostHog's `HAVING count() <op> value`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickinessCriteria {
    pub operator: StickinessOperator,
    pub value: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StickinessOperator {
    Gte,
    Lte,
    Exact,
}

impl StickinessOperator {
    pub fn sql(self) -> &'static str {
        match self {
            Self::Gte => ">=",
            Self::Lte => "<=",
            Self::Exact => "=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StickinessComputation {
    NonCumulative,
    Cumulative,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathsQuery {
    #[serde(rename = "dateRange")]
    pub date_range: DateRange,
    pub properties: Properties,
    pub aggregation_group_type_index: Option<u8>,
    #[serde(rename = "pathsFilter")]
    pub paths_filter: PathsFilter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathsFilter {
    #[serde(rename = "includeEventTypes")]
    pub include_event_types: Option<Vec<PathEventType>>,
    #[serde(rename = "startPoint")]
    pub start_point: Option<String>,
    #[serde(rename = "endPoint")]
    pub end_point: Option<String>,
    #[serde(rename = "stepLimit")]
    pub step_limit: Option<usize>,
    #[serde(rename = "excludeEvents")]
    pub exclude_events: Option<Vec<String>>,
    #[serde(rename = "edgeLimit")]
    pub edge_limit: Option<usize>,
    #[serde(rename = "minEdgeWeight")]
    pub min_edge_weight: Option<u64>,
    #[serde(rename = "maxEdgeWeight")]
    pub max_edge_weight: Option<u64>,
    /// The drill-down's node or edge (`3_/pricing`): paths continuing after
    /// the start key, reaching the end key, or with the edge between them.
    /// The chart itself does not depend on them.
    #[serde(rename = "pathStartKey")]
    pub path_start_key: Option<String>,
    #[serde(rename = "pathEndKey")]
    pub path_end_key: Option<String>,
    /// Paths ending at this node.
    #[serde(rename = "pathDropoffKey")]
    pub path_dropoff_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PathEventType {
    #[serde(rename = "$pageview")]
    Pageview,
    #[serde(rename = "$screen")]
    Screen,
    #[serde(rename = "custom_event")]
    CustomEvent,
}
