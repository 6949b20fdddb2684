//! Fields of PostHog's query schema that Cairn accepts without reading,
//! because they do not change the answer (presentation, bookkeeping, or a
//! setting Cairn has nothing to apply to). They are removed before parsing;
//! every node refuses any other field it does not read, so a query is never
//! answered as if a setting it asked for were absent.

use serde_json::Value;

/// Any insight query node's own fields. `filterTestAccounts`: Cairn has no
/// test-account filters, as a project with none; `samplingFactor`: Cairn
/// reads every event, the exact answer sampling estimates.
const QUERY: &[&str] = &[
    "kind",
    "version",
    "response",
    "filterTestAccounts",
    "samplingFactor",
    "dataColorTheme",
    "tags",
];

/// A series or funnel step (`EventsNode`).
const SERIES: &[&str] = &["version", "response"];

/// A retention entity: display name and the editor's bookkeeping.
const RETENTION_ENTITY: &[&str] = &["kind", "custom_name", "order", "uuid"];

/// Display options of each kind's filter node (drawn by the client).
const FILTERS: &[(&str, &[&str])] = &[
    (
        "trendsFilter",
        &[
            "showLegend",
            "showValuesOnSeries",
            "showLabelsOnSeries",
            "showPercentStackView",
            "showMultipleYAxes",
            "showTrendLines",
            "showAlertThresholdLines",
            "showConfidenceIntervals",
            "confidenceLevel",
            "showMovingAverage",
            "movingAverageIntervals",
            "hiddenLegendIndexes",
            "aggregationAxisFormat",
            "aggregationAxisPrefix",
            "aggregationAxisPostfix",
            "decimalPlaces",
            "minDecimalPlaces",
            "yAxisScaleType",
            "goalLines",
            "resultCustomizationBy",
            "resultCustomizations",
        ],
    ),
    (
        "funnelsFilter",
        &[
            "layout",
            "funnelStepReference",
            "hiddenLegendBreakdowns",
            "resultCustomizations",
            "showValuesOnSeries",
            "goalLines",
            "useUdf",
        ],
    ),
    (
        "retentionFilter",
        &[
            "display",
            "showMean",
            "meanRetentionCalculation",
            "dashboardDisplay",
            "retentionReference",
            "selectedInterval",
            "showTrendLines",
        ],
    ),
    (
        "stickinessFilter",
        &[
            "display",
            "showLegend",
            "showValuesOnSeries",
            "showMultipleYAxes",
            "hiddenLegendIndexes",
            "resultCustomizationBy",
            "resultCustomizations",
        ],
    ),
    (
        "lifecycleFilter",
        &[
            "toggledLifecycles",
            "showLegend",
            "showValuesOnSeries",
            "stacked",
        ],
    ),
];

/// Removes the accepted fields from a query node, wherever they sit.
pub fn strip(query: &mut Value) {
    remove(query, QUERY);
    for item in items(query.get_mut("series")) {
        remove(item, SERIES);
    }
    for (filter, fields) in FILTERS {
        if let Some(node) = query.get_mut(*filter) {
            remove(node, fields);
        }
    }
    if let Some(filter) = query.get_mut("funnelsFilter") {
        for item in items(filter.get_mut("exclusions")) {
            remove(item, SERIES);
        }
    }
    if let Some(filter) = query.get_mut("retentionFilter") {
        for entity in ["targetEntity", "returningEntity"] {
            if let Some(node) = filter.get_mut(entity) {
                remove(node, RETENTION_ENTITY);
            }
        }
    }
}

fn remove(node: &mut Value, fields: &[&str]) {
    if let Value::Object(object) = node {
        for field in fields {
            object.remove(*field);
        }
    }
}

fn items(list: Option<&mut Value>) -> impl Iterator<Item = &mut Value> {
    list.and_then(Value::as_array_mut).into_iter().flatten()
}
