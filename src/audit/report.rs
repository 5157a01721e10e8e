//! Signed retention reports (`../shared/design/audit.md` §4): the rows of every version of
//! a bucket or prefix with its Object Lock state, a summary, the trail's checkpoint, all
//! signed by the trail's key; the format is `stele_tlog::report`'s, which `stelectl audit
//! verify-report` and `diff` check offline. Each report is itself an event of the trail
//! (`report-generated`, with the attestation's SHA-256).

use std::ops::ControlFlow;

use serde_json::json;
use stele_tlog::report::{self, Attestation, GeneratedAt, Row, Scope, Summary};

use crate::audit::entry::iso_micros;
use crate::audit::trail::TrailError;
use crate::audit::{Entry, Requester, Trail};
use crate::lock::Now;
use crate::meta::{BucketRecord, Meta, VersionKind, VersionRecord};

/// A report's three files.
#[derive(Debug, Clone)]
pub struct Report {
    /// `attestation.json`.
    pub attestation: Vec<u8>,
    /// `attestation.sig` (a signed note).
    pub signature: String,
    /// `rows.csv`.
    pub rows_csv: String,
}

/// The BLAKE3 column of `v` (see `stele_tlog::report`).
fn checksum(v: &VersionRecord) -> String {
    match v.blake3.as_slice() {
        [] => String::new(),
        [one] => format!("blake3:{}", hex::encode(one)),
        parts => format!(
            "blake3-parts:{}",
            parts.iter().map(hex::encode).collect::<Vec<_>>().join("+")
        ),
    }
}

/// The rows of `bucket`'s versions under `prefix`, sorted by key, newest first.
///
/// # Errors
/// A metadata read's.
pub fn rows(meta: &Meta, bucket: &BucketRecord, prefix: &str) -> Result<Vec<Row>, TrailError> {
    let mut versions = Vec::new();
    meta.scan_versions(&bucket.name, prefix, |k, v| {
        if !k.as_str().starts_with(prefix) {
            return ControlFlow::Break(());
        }
        versions.push((k, v));
        ControlFlow::Continue(())
    })?;
    let mut out = Vec::with_capacity(versions.len());
    let mut last_key: Option<String> = None;
    for (k, v) in versions {
        let lock = meta.lock(&bucket.name, &k, &v.version_id)?;
        let is_latest = last_key.as_deref() != Some(k.as_str());
        last_key = Some(k.as_str().to_owned());
        out.push(Row {
            bucket: bucket.name.as_str().to_owned(),
            key: report::url_encode(k.as_str()),
            version_id: if v.null_version {
                "null".to_owned()
            } else {
                v.version_id.to_string()
            },
            is_latest,
            is_delete_marker: v.kind == VersionKind::DeleteMarker,
            size: v.size,
            last_modified: iso_micros(v.created),
            etag: v.etag.clone(),
            checksum_algorithm: v
                .checksums
                .first()
                .map(|c| c.algorithm.name().to_owned())
                .unwrap_or_default(),
            retain_until: lock
                .retention
                .map(|r| iso_micros(r.until))
                .unwrap_or_default(),
            mode: lock
                .retention
                .map(|r| r.mode.as_str().to_owned())
                .unwrap_or_default(),
            legal_hold: lock.legal_hold,
            checksum: checksum(&v),
        });
    }
    Ok(out)
}

/// A versioning state as S3 names it (`Enabled`, `Suspended`; `Unversioned` for never).
pub fn versioning_name(v: crate::meta::Versioning) -> &'static str {
    match v {
        crate::meta::Versioning::Unversioned => "Unversioned",
        crate::meta::Versioning::Enabled => "Enabled",
        crate::meta::Versioning::Suspended => "Suspended",
    }
}

/// A default retention's period as S3's `DefaultRetention` gives it (`{"days": n}` or
/// `{"years": n}`).
pub fn period_json(p: crate::meta::RetentionPeriod) -> serde_json::Value {
    match p {
        crate::meta::RetentionPeriod::Days(d) => json!({ "days": d }),
        crate::meta::RetentionPeriod::Years(y) => json!({ "years": y }),
    }
}

/// Which versions a retention query wants (`GET /v1/retention/versions`). Dates compare
/// as text against the rows' ISO 8601 dates.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VersionFilter {
    /// `COMPLIANCE`, `GOVERNANCE`, or `none` (no retention).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Retained until before this (expiring soon).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_before: Option<String>,
    /// Retained until this or later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_after: Option<String>,
    /// Under a legal hold (`true`) or not (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_hold: Option<bool>,
}

impl VersionFilter {
    /// Whether `r` is wanted (delete markers never are: they hold nothing to retain).
    pub fn matches(&self, r: &Row) -> bool {
        let until = r.retain_until.as_str();
        !r.is_delete_marker
            && self.mode.as_deref().is_none_or(|m| match m {
                "none" => r.mode.is_empty(),
                m => r.mode == m,
            })
            && self
                .retain_before
                .as_deref()
                .is_none_or(|b| !until.is_empty() && until < b)
            && self
                .retain_after
                .as_deref()
                .is_none_or(|a| !until.is_empty() && until >= a)
            && self.legal_hold.is_none_or(|h| r.legal_hold == h)
    }
}

/// The bucket's configuration as a report states it.
fn configuration(b: &BucketRecord) -> serde_json::Value {
    json!({
        "versioning": versioning_name(b.versioning),
        "object_lock": b.object_lock,
        "default_retention": b.default_retention.map(|d| json!({
            "mode": d.mode.as_str(),
            "period": period_json(d.period),
        })),
        "retention_policy": serde_json::to_value(&b.policy).unwrap_or_default(),
        "quota_bytes": b.quota,
    })
}

impl Trail {
    /// A signed report of `bucket`'s versions under `prefix`, asked by `by`, at the
    /// `retention` clock's readings once the rows are read, stating its lag and anomalies
    /// (`generated_at.trusted` is the time Object Lock decisions read: the lower of the
    /// retention clock and the wall clock): the trail's queue is written and a checkpoint signed first (the report names
    /// it), then the `report-generated` event is recorded with the attestation's SHA-256.
    ///
    /// # Errors
    /// [`TrailError::NoKey`] before the key is set; a metadata read or write.
    pub fn report(
        &self,
        meta: &Meta,
        bucket: &BucketRecord,
        prefix: &str,
        retention: &crate::lock::RetentionClock,
        by: Option<&Requester>,
    ) -> Result<Report, TrailError> {
        let (_, checkpoint) = self.checkpoint()?;
        let rows = rows(meta, bucket, prefix)?;
        // Read once the rows are: a report says its rows held at its time (a version that
        // expired and went before the scan is simply not in it).
        let clock = retention.status();
        let now: Now = retention.readings();
        let rows_csv = report::rows_csv(&rows);
        let (digest, _) = report::read_rows(rows_csv.as_bytes())?;
        let a = Attestation {
            kind: report::TYPE.to_owned(),
            origin: self.origin().to_owned(),
            generated_at: GeneratedAt {
                trusted: iso_micros(now.earliest),
                wall: iso_micros(now.wall),
            },
            scope: Scope {
                bucket: bucket.name.as_str().to_owned(),
                prefix: prefix.to_owned(),
            },
            bucket: configuration(bucket),
            summary: Summary::of(&rows),
            time: json!({
                "source": "retention-clock",
                "retention_now": iso_micros(clock.retention_now),
                "wall_now": iso_micros(clock.wall_now),
                "behind_wall_micros": clock.behind_wall_micros,
                "anomalies": clock.anomalies,
                "last_anomaly": clock.last_anomaly.map(|a| json!({
                    "at": iso_micros(a.at),
                    "step_micros": a.step_micros,
                })),
            }),
            checkpoint,
            rows: digest,
            columns: report::COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        };
        let attestation = serde_json::to_vec_pretty(&a).map_err(|e| TrailError::Task {
            reason: format!("cannot write the attestation: {e}"),
        })?;
        let signer = self.signer().ok_or(TrailError::NoKey)?;
        let signature = report::sign(&attestation, signer)?;
        self.record(
            Entry::new("report-generated", now)
                .by(by)
                .on(
                    bucket.name.as_str(),
                    (!prefix.is_empty()).then_some(prefix),
                    None,
                )
                .with(
                    "attestation_sha256",
                    hex::encode(crate::crypto::sha256(&attestation)),
                )
                .with("rows", a.rows.count),
        );
        self.flush()?;
        Ok(Report {
            attestation,
            signature,
            rows_csv,
        })
    }
}
