//! The `cairn` server: HTTP routes over the ingestion pipeline and the store.

pub mod api;
pub mod app;
pub mod auth;
pub mod body;
pub mod bootstrap;
pub mod capture;
pub mod config;
pub mod connections;
pub mod decoding;
pub mod demo;
pub mod error;

pub mod flags;
pub mod migrate;
pub mod origin;
pub mod passwords;
pub mod security_headers;
pub mod serve;
pub mod state;
pub mod storage;
pub mod throttle;
pub mod ui;
pub mod users;
