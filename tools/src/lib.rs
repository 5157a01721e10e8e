//! Library side of `stelectl`: pieces the end-to-end tests share with the CLI.

pub mod sigv4;
