//! The audit trail: its public keys and its latest signed checkpoint (the export itself is
//! NDJSON, not JSON: `GET /v1/audit/events?format=ndjson`).

use serde::{Deserialize, Serialize};

/// `GET /v1/audit/keys`: what an auditor checks exports and checkpoints against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    /// The log's name (`stele/<log id>/audit/node`): every checkpoint's first line and
    /// the keys' name.
    pub origin: String,
    /// The public keys, in the C2SP note verifier format (`origin+keyid+base64`), the
    /// form `stelectl audit verify --key` reads; the current key first.
    pub keys: Vec<String>,
}

/// `GET /v1/audit/checkpoints/latest`: the latest signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestCheckpoint {
    /// Leaves it covers.
    pub size: u64,
    /// The signed note (C2SP tlog-checkpoint), as `--trust` reads it.
    pub checkpoint: String,
}

/// `POST /v1/reports`: what to report on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRequest {
    /// The bucket.
    pub bucket: String,
    /// Only keys under this prefix (none: the whole bucket).
    #[serde(default)]
    pub prefix: Option<String>,
}

/// A signed retention report's three files, as text (`stelectl audit report` writes them
/// into a folder for `verify-report` and `diff`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// `attestation.json`, byte for byte as signed.
    pub attestation: String,
    /// `attestation.sig`: the signed note over its SHA-256.
    pub signature: String,
    /// `rows.csv`.
    pub rows_csv: String,
}
