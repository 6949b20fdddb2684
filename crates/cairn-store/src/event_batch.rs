//! Events as an Arrow record batch in the events table's column order:
//! DuckDB's appender and ClickHouse's `ArrowStream` input take it.

use std::collections::HashMap;
use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, FixedSizeBinaryBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::arrow::record_batch::RecordBatch;

use cairn_core::Event;

use crate::schema::EventColumn;
use crate::{Result, StoreError};

/// The Arrow extension DuckDB reads a 16-byte binary column as UUID by.
const UUID_EXTENSION: (&str, &str) = ("ARROW:extension:name", "arrow.uuid");

/// How an engine takes UUIDs from Arrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uuids {
    /// 16 bytes, tagged with [`UUID_EXTENSION`] (DuckDB).
    Binary,
    /// Hyphenated text (ClickHouse casts it to its `UUID`).
    Text,
}

enum Column {
    Integer(Int64Builder),
    Uuid(FixedSizeBinaryBuilder),
    UuidText(StringBuilder),
    Text(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
}

/// A property as DuckDB's `json_extract_string` reads it.
fn property_text(value: &serde_json::Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.as_str().into()),
        other => Some(other.to_string().into()),
    }
}

/// `events` (`count` of them) as one batch; each comes with its properties
/// as JSON when they are at hand already.
pub(crate) fn build<'a>(
    layout: &[EventColumn],
    events: impl IntoIterator<Item = (&'a Event, Option<&'a str>)>,
    count: usize,
    uuids: Uuids,
) -> Result<RecordBatch> {
    let mut columns: Vec<Column> = layout
        .iter()
        .map(|column| match column {
            EventColumn::Fixed(0) => Column::Integer(Int64Builder::with_capacity(count)),
            EventColumn::Fixed(1 | 4) => match uuids {
                Uuids::Binary => Column::Uuid(FixedSizeBinaryBuilder::with_capacity(count, 16)),
                Uuids::Text => Column::UuidText(StringBuilder::with_capacity(count, count * 36)),
            },
            EventColumn::Fixed(5 | 6) => {
                Column::Timestamp(TimestampMicrosecondBuilder::with_capacity(count))
            }
            _ => Column::Text(StringBuilder::with_capacity(count, count * 16)),
        })
        .collect();
    let mut json = Vec::new();
    let mut uuid_text = uuid::Uuid::encode_buffer();
    for (event, properties) in events {
        for (column, builder) in layout.iter().zip(&mut columns) {
            match (column, builder) {
                (EventColumn::Fixed(0), Column::Integer(b)) => b.append_value(event.project_id.0),
                (EventColumn::Fixed(1), Column::Uuid(b)) => {
                    b.append_value(event.uuid.as_bytes())?
                }
                (EventColumn::Fixed(2), Column::Text(b)) => b.append_value(&event.event),
                (EventColumn::Fixed(3), Column::Text(b)) => b.append_value(&event.distinct_id),
                (EventColumn::Fixed(1), Column::UuidText(b)) => {
                    b.append_value(event.uuid.hyphenated().encode_lower(&mut uuid_text))
                }
                (EventColumn::Fixed(4), Column::Uuid(b)) => match event.person_id {
                    Some(id) => b.append_value(id.as_bytes())?,
                    None => b.append_null(),
                },
                (EventColumn::Fixed(4), Column::UuidText(b)) => b.append_option(
                    event
                        .person_id
                        .map(|id| &*id.hyphenated().encode_lower(&mut uuid_text)),
                ),
                (EventColumn::Fixed(5), Column::Timestamp(b)) => {
                    b.append_value(event.timestamp.timestamp_micros())
                }
                (EventColumn::Fixed(6), Column::Timestamp(b)) => {
                    b.append_value(event.inserted_at.timestamp_micros())
                }
                (EventColumn::Fixed(7), Column::Text(b)) => match properties {
                    Some(properties) => b.append_value(properties),
                    None => {
                        json.clear();
                        serde_json::to_writer(&mut json, &event.properties)?;
                        b.append_value(std::str::from_utf8(&json).expect("JSON is UTF-8"));
                    }
                },
                (EventColumn::Group(i), Column::Text(b)) => {
                    b.append_option(event.groups.get(*i).and_then(Option::as_deref))
                }
                (EventColumn::Materialized(key), Column::Text(b)) => {
                    b.append_option(event.properties.get(*key).and_then(property_text))
                }
                (column, _) => {
                    return Err(StoreError::Corrupt(format!(
                        "unexpected events column {column:?}"
                    )))
                }
            }
        }
    }
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = layout
        .iter()
        .zip(columns)
        .map(|(column, builder)| {
            let name = column.name();
            let nullable = !matches!(column, EventColumn::Fixed(0..=3 | 5..=7));
            match builder {
                Column::Integer(mut b) => (
                    Field::new(name, DataType::Int64, nullable),
                    Arc::new(b.finish()) as ArrayRef,
                ),
                Column::Uuid(mut b) => (
                    Field::new(name, DataType::FixedSizeBinary(16), nullable).with_metadata(
                        HashMap::from([(UUID_EXTENSION.0.into(), UUID_EXTENSION.1.into())]),
                    ),
                    Arc::new(b.finish()) as ArrayRef,
                ),
                Column::Text(mut b) | Column::UuidText(mut b) => (
                    Field::new(name, DataType::Utf8, nullable),
                    Arc::new(b.finish()) as ArrayRef,
                ),
                Column::Timestamp(mut b) => (
                    Field::new(
                        name,
                        DataType::Timestamp(TimeUnit::Microsecond, None),
                        nullable,
                    ),
                    Arc::new(b.finish()) as ArrayRef,
                ),
            }
        })
        .unzip();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}
