//! Business logic of the service: plain functions over the shared types, no HTTP, no async.

pub mod isbn;
pub mod shipping;
