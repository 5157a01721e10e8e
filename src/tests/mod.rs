//! Tests that span the core's modules.

mod formats;
