//! Signed retention reports (attestations), `../shared/design/audit.md` §4: for a bucket or
//! prefix, one row per version (`rows.csv`), a summary and digests of the rows
//! (`attestation.json`), and a signed note over the attestation's SHA-256
//! (`attestation.sig`), so a report can be checked offline ([`verify`]) and two reports
//! compared for retention continuity ([`diff`]).
//!
//! `rows.csv`: a header line of [`COLUMNS`], then one line per version sorted by (bucket,
//! key, newest first), every field in double quotes (RFC 4180; no field may hold a quote,
//! a comma-free form the key's URL-encoding guarantees). The columns are S3 Inventory's
//! names for the same facts (`Bucket`, `Key` URL-encoded, `VersionId`, `IsLatest`,
//! `IsDeleteMarker`, `Size`, `LastModifiedDate`, `ETag`, `ChecksumAlgorithm`,
//! `ObjectLockRetainUntilDate`, `ObjectLockMode`, `ObjectLockLegalHoldStatus`,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_InventoryConfiguration.html>),
//! then Stele's `Checksum` (`blake3:<hex>` of the object's bytes, `blake3-parts:<hex>+…`
//! per part for a multipart object). Dates are ISO 8601 UTC with microseconds, so they
//! compare as strings.
//!
//! The signed note's text is `stele.attestation/v1\n<origin>\n<base64 SHA-256 of
//! attestation.json>\n`, signed by the audit trail's key: the rows are bound through
//! their SHA-256, count and RFC 6962 root (one row can be proven without the file).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::TlogError;
use crate::crypto::sha256;
use crate::merkle;
use crate::note::{self, Signer, Verifier};

/// The attestation's type, its signed note's first line.
pub const TYPE: &str = "stele.attestation/v1";

/// The columns of `rows.csv`, in order.
pub const COLUMNS: [&str; 13] = [
    "Bucket",
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    "Size",
    "LastModifiedDate",
    "ETag",
    "ChecksumAlgorithm",
    "ObjectLockRetainUntilDate",
    "ObjectLockMode",
    "ObjectLockLegalHoldStatus",
    "Checksum",
];

fn malformed(what: &'static str, reason: impl Into<String>) -> TlogError {
    TlogError::Malformed {
        what,
        reason: reason.into(),
    }
}

/// One version, as a row of `rows.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The bucket.
    pub bucket: String,
    /// The object key, URL-encoded ([`url_encode`]).
    pub key: String,
    /// The version id (`null` for a null version).
    pub version_id: String,
    /// Whether it is the key's newest version.
    pub is_latest: bool,
    /// Whether it is a delete marker.
    pub is_delete_marker: bool,
    /// Its size in bytes.
    pub size: u64,
    /// When it was made.
    pub last_modified: String,
    /// Its ETag (without quotes).
    pub etag: String,
    /// The S3 checksum algorithm the client asked for, if any.
    pub checksum_algorithm: String,
    /// The retain-until date, if it has a retention.
    pub retain_until: String,
    /// `COMPLIANCE`, `GOVERNANCE`, or empty.
    pub mode: String,
    /// Whether a legal hold is on.
    pub legal_hold: bool,
    /// The BLAKE3 of its bytes (see the module).
    pub checksum: String,
}

/// `key` URL-encoded as S3 Inventory writes keys: every byte but `A-Z a-z 0-9 - _ . ~ /`
/// as `%XX`.
pub fn url_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The bytes a [`url_encode`]d key stands for (a malformed escape is kept as it is).
pub fn url_decode(key: &str) -> Vec<u8> {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

impl Row {
    /// The row's CSV line (no line end).
    pub fn line(&self) -> String {
        let bool_text = |b: bool| if b { "true" } else { "false" };
        let fields = [
            self.bucket.as_str(),
            self.key.as_str(),
            self.version_id.as_str(),
            bool_text(self.is_latest),
            bool_text(self.is_delete_marker),
            &self.size.to_string(),
            self.last_modified.as_str(),
            self.etag.as_str(),
            self.checksum_algorithm.as_str(),
            self.retain_until.as_str(),
            self.mode.as_str(),
            if self.legal_hold { "ON" } else { "OFF" },
            self.checksum.as_str(),
        ];
        let quoted: Vec<String> = fields.iter().map(|f| format!("\"{f}\"")).collect();
        quoted.join(",")
    }

    /// Reads a line [`Row::line`] wrote.
    ///
    /// # Errors
    /// [`TlogError::Malformed`] for any other shape.
    pub fn parse(line: &str) -> Result<Self, TlogError> {
        let what = "report row";
        let inner = line
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix('"'))
            .ok_or_else(|| malformed(what, "fields are quoted"))?;
        let f: Vec<&str> = inner.split("\",\"").collect();
        if f.len() != COLUMNS.len() {
            return Err(malformed(
                what,
                format!("{} fields, expected {}", f.len(), COLUMNS.len()),
            ));
        }
        if f.iter().any(|x| x.contains('"')) {
            return Err(malformed(what, "a field holds a quote"));
        }
        let boolean = |s: &str| match s {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(malformed(what, format!("not true or false: {s}"))),
        };
        Ok(Self {
            bucket: f[0].to_owned(),
            key: f[1].to_owned(),
            version_id: f[2].to_owned(),
            is_latest: boolean(f[3])?,
            is_delete_marker: boolean(f[4])?,
            size: f[5]
                .parse()
                .map_err(|_| malformed(what, format!("size {}", f[5])))?,
            last_modified: f[6].to_owned(),
            etag: f[7].to_owned(),
            checksum_algorithm: f[8].to_owned(),
            retain_until: f[9].to_owned(),
            mode: f[10].to_owned(),
            legal_hold: match f[11] {
                "ON" => true,
                "OFF" => false,
                other => return Err(malformed(what, format!("legal hold {other}"))),
            },
            checksum: f[12].to_owned(),
        })
    }
}

/// Versions and bytes of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// Versions.
    pub versions: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, size: u64) {
        self.versions += 1;
        self.bytes += size;
    }
}

/// What the rows hold, recomputed by [`verify`] from the rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Every object version (delete markers apart).
    pub versions: Count,
    /// Under COMPLIANCE retention.
    pub compliance: Count,
    /// Under GOVERNANCE retention.
    pub governance: Count,
    /// Under neither retention.
    pub no_retention: Count,
    /// Under a legal hold (whatever their retention).
    pub legal_holds: u64,
    /// Delete markers.
    pub delete_markers: u64,
    /// The earliest retain-until date among the versions, if any has one.
    pub earliest_retain_until: Option<String>,
    /// The latest.
    pub latest_retain_until: Option<String>,
}

impl Summary {
    /// The summary of `rows`.
    pub fn of(rows: &[Row]) -> Self {
        let mut s = Self::default();
        for r in rows {
            if r.is_delete_marker {
                s.delete_markers += 1;
                continue;
            }
            s.versions.add(r.size);
            match r.mode.as_str() {
                "COMPLIANCE" => s.compliance.add(r.size),
                "GOVERNANCE" => s.governance.add(r.size),
                _ => s.no_retention.add(r.size),
            }
            if r.legal_hold {
                s.legal_holds += 1;
            }
            if !r.retain_until.is_empty() {
                let until = Some(r.retain_until.clone());
                if s.earliest_retain_until.is_none() || until < s.earliest_retain_until {
                    s.earliest_retain_until = until.clone();
                }
                if until > s.latest_retain_until {
                    s.latest_retain_until = until;
                }
            }
        }
        s
    }
}

/// When a report was made: the retention clock (the time its retention facts hold at) and
/// the wall clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedAt {
    /// Trusted time.
    pub trusted: String,
    /// Wall time.
    pub wall: String,
}

/// What a report covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (empty: the whole bucket).
    pub prefix: String,
}

/// The rows file's digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsDigest {
    /// Hex SHA-256 of `rows.csv`'s bytes.
    pub sha256: String,
    /// How many rows (the header apart).
    pub count: u64,
    /// Base64 RFC 6962 root over the rows' lines (each line's bytes, no line end).
    pub root: String,
}

/// `attestation.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attestation {
    /// [`TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The audit trail's origin (its key's name).
    pub origin: String,
    /// When.
    pub generated_at: GeneratedAt,
    /// What.
    pub scope: Scope,
    /// The bucket's configuration then (versioning, Object Lock, default retention,
    /// retention policy, quota), as the node reports it.
    pub bucket: serde_json::Value,
    /// The rows' summary.
    pub summary: Summary,
    /// The time the retain-until decisions read (`source`: the node's retention clock),
    /// how far it ran behind the wall clock, and the clock anomalies the node counted
    /// (total and the latest), so two reports show any anomaly between them.
    pub time: serde_json::Value,
    /// The audit trail's signed checkpoint when the report was made.
    pub checkpoint: String,
    /// The rows file's digests.
    pub rows: RowsDigest,
    /// The columns of the rows file.
    pub columns: Vec<String>,
}

/// The bytes of `rows.csv` for `rows` (header first, `\n` after every line).
pub fn rows_csv(rows: &[Row]) -> String {
    let mut out = COLUMNS
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&r.line());
        out.push('\n');
    }
    out
}

/// The digests of a rows file and its rows.
///
/// # Errors
/// [`TlogError::Malformed`]: a header other than [`COLUMNS`], or a row that does not read.
pub fn read_rows(csv: &[u8]) -> Result<(RowsDigest, Vec<Row>), TlogError> {
    let text = std::str::from_utf8(csv).map_err(|_| malformed("report rows", "not UTF-8"))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let want = COLUMNS
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(",");
    if header != want {
        return Err(malformed(
            "report rows",
            "the header is not the report's columns",
        ));
    }
    let mut rows = Vec::new();
    let mut hashes = Vec::new();
    for l in lines {
        rows.push(Row::parse(l)?);
        hashes.push(merkle::leaf_hash(l.as_bytes()));
    }
    Ok((
        RowsDigest {
            sha256: hex(&sha256(&[csv])),
            count: rows.len() as u64,
            root: B64.encode(merkle::root(&hashes)),
        },
        rows,
    ))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn note_text(origin: &str, attestation: &[u8]) -> String {
    format!("{TYPE}\n{origin}\n{}\n", B64.encode(sha256(&[attestation])))
}

/// `attestation.sig`: the signed note over `attestation`'s SHA-256 by `signer` (the audit
/// trail's key, whose name is the origin).
///
/// # Errors
/// [`TlogError::Malformed`] for an origin the note format refuses.
pub fn sign(attestation: &[u8], signer: &Signer) -> Result<String, TlogError> {
    note::sign(&note_text(signer.name(), attestation), &[signer])
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checked {
    /// Every check held.
    pub verified: bool,
    /// What did not hold, in the order checked.
    pub problems: Vec<String>,
    /// Rows read.
    pub rows: u64,
}

/// Checks a report offline: the note over `attestation` is signed by one of `keys` and
/// names its SHA-256; the rows file's SHA-256, row count and root are the attestation's;
/// the summary recomputes from the rows.
///
/// # Errors
/// [`TlogError::Malformed`] for input that cannot be checked: no key, an attestation that
/// is not JSON of this type.
pub fn verify(
    attestation: &[u8],
    signature: &str,
    rows_csv: &[u8],
    keys: &[Verifier],
) -> Result<(Attestation, Checked), TlogError> {
    if keys.is_empty() {
        return Err(malformed("report", "no public key to check against"));
    }
    let a: Attestation =
        serde_json::from_slice(attestation).map_err(|e| malformed("attestation", e.to_string()))?;
    if a.kind != TYPE {
        return Err(malformed("attestation", format!("type {}", a.kind)));
    }
    let mut problems = Vec::new();
    match note::open(signature, keys) {
        Ok(opened) if opened.text == note_text(&a.origin, attestation) => {}
        Ok(_) => problems.push(
            "the signature is over another attestation (attestation.json was changed)".to_owned(),
        ),
        Err(e) => problems.push(format!("the signature does not verify: {e}")),
    }
    if let Err(e) = crate::checkpoint::Checkpoint::open(&a.checkpoint, &a.origin, keys) {
        problems.push(format!("the embedded checkpoint does not verify: {e}"));
    }
    let mut count = 0;
    match read_rows(rows_csv) {
        Ok((digest, rows)) => {
            count = digest.count;
            let prefix = url_encode(&a.scope.prefix);
            if let Some(r) = rows
                .iter()
                .find(|r| r.bucket != a.scope.bucket || !r.key.starts_with(&prefix))
            {
                problems.push(format!(
                    "a row lies outside the report's scope: {}/{}",
                    r.bucket, r.key
                ));
            }
            // Sorted as the keys' bytes sort (their encoded text sorts otherwise).
            if rows.windows(2).any(|w| {
                let k = |r: &Row| (r.bucket.clone().into_bytes(), url_decode(&r.key));
                k(&w[0]) > k(&w[1]) || (k(&w[0]) == k(&w[1]) && w[0].version_id == w[1].version_id)
            }) {
                problems.push("the rows are not sorted by key, or a version repeats".into());
            }
            if digest.sha256 != a.rows.sha256 {
                problems.push("rows.csv is not the file the attestation names (SHA-256)".into());
            }
            if digest.count != a.rows.count {
                problems.push(format!(
                    "rows.csv holds {} rows, the attestation {}",
                    digest.count, a.rows.count
                ));
            }
            if digest.root != a.rows.root {
                problems.push("the rows do not give the attestation's root".into());
            }
            if Summary::of(&rows) != a.summary {
                problems.push("the summary is not the rows' summary".into());
            }
        }
        Err(e) => problems.push(format!("rows.csv does not read: {e}")),
    }
    Ok((
        a,
        Checked {
            verified: problems.is_empty(),
            problems,
            rows: count,
        },
    ))
}

/// A version an earlier report showed protected that a later one lost or weakened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The bucket.
    pub bucket: String,
    /// The key (URL-encoded).
    pub key: String,
    /// The version.
    pub version_id: String,
    /// What happened to it.
    pub problem: String,
}

fn strength(mode: &str) -> u8 {
    match mode {
        "COMPLIANCE" => 2,
        "GOVERNANCE" => 1,
        _ => 0,
    }
}

/// Retention continuity between two reports of one scope (`../shared/design/audit.md`
/// §4): every version `old` shows under a legal hold, or under a retention that still ran
/// at `new`'s generation time, must be in `new` with the same checksum and ETag; while its
/// retention still runs, with a retain-until no earlier and a mode no weaker. Versions
/// whose protection had ended by then may be gone. Two cases are legal yet flagged, since
/// the reports alone cannot tell them apart from tampering: a legal hold lifted and the
/// version then removed, and a GOVERNANCE retention shortened or removed with the bypass;
/// the trail's `legal-hold-set` and `version-removed` events (with `bypass_governance`)
/// explain them. Give the reports checked first ([`verify`]): this compares rows only.
pub fn diff(
    old: &Attestation,
    old_rows: &[Row],
    new: &Attestation,
    new_rows: &[Row],
) -> Vec<Violation> {
    let at = &new.generated_at.trusted;
    let index: std::collections::HashMap<(&str, &str, &str), &Row> = new_rows
        .iter()
        .map(|r| {
            (
                (r.bucket.as_str(), r.key.as_str(), r.version_id.as_str()),
                r,
            )
        })
        .collect();
    let mut out = Vec::new();
    for r in old_rows.iter().filter(|r| !r.is_delete_marker) {
        let retained = !r.retain_until.is_empty() && r.retain_until > *at;
        if !r.legal_hold && !retained {
            continue;
        }
        let violation = |problem: String| Violation {
            bucket: r.bucket.clone(),
            key: r.key.clone(),
            version_id: r.version_id.clone(),
            problem,
        };
        let why = if retained {
            format!("{} until {}", r.mode, r.retain_until)
        } else {
            "under a legal hold (legal only if the hold was lifted first: see the trail)".to_owned()
        };
        match index.get(&(r.bucket.as_str(), r.key.as_str(), r.version_id.as_str())) {
            None => out.push(violation(format!("gone while {why}"))),
            Some(n) => {
                if n.checksum != r.checksum || n.etag != r.etag || n.size != r.size {
                    out.push(violation(format!("its content changed while {why}")));
                }
                if retained && n.retain_until < r.retain_until {
                    out.push(violation(format!(
                        "retain-until shortened from {} to {}",
                        r.retain_until,
                        if n.retain_until.is_empty() {
                            "none"
                        } else {
                            &n.retain_until
                        }
                    )));
                }
                if retained && strength(&n.mode) < strength(&r.mode) {
                    out.push(violation(format!(
                        "mode weakened from {} to {}",
                        r.mode,
                        if n.mode.is_empty() { "none" } else { &n.mode }
                    )));
                }
            }
        }
    }
    let _ = old;
    out
}

/// Why two reports cannot be compared: both must be genuine, of one log and one scope,
/// and given in time order.
///
/// # Errors
/// [`TlogError::Malformed`] naming what does not hold.
pub fn comparable(old: &Attestation, new: &Attestation) -> Result<(), TlogError> {
    let what = "report pair";
    if old.origin != new.origin {
        return Err(malformed(what, "the reports are of different logs"));
    }
    if old.scope != new.scope {
        return Err(malformed(
            what,
            "the reports cover different buckets or prefixes",
        ));
    }
    if old.generated_at.trusted > new.generated_at.trusted {
        return Err(malformed(
            what,
            "OLD was made after NEW: give the earlier report first",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, until: &str, mode: &str, hold: bool) -> Row {
        Row {
            bucket: "b".into(),
            key: url_encode(key),
            version_id: format!("v-{}", url_encode(key)),
            is_latest: true,
            is_delete_marker: false,
            size: 3,
            last_modified: "2026-01-01T00:00:00.000000Z".into(),
            etag: "e".into(),
            checksum_algorithm: String::new(),
            retain_until: until.into(),
            mode: mode.into(),
            legal_hold: hold,
            checksum: "blake3:00".into(),
        }
    }

    #[test]
    fn rows_read_back_and_keys_are_url_encoded() {
        let r = row(
            "a b,\"c\"\n/é",
            "2027-01-01T00:00:00.000000Z",
            "COMPLIANCE",
            true,
        );
        assert_eq!(r.key, "a%20b%2C%22c%22%0A/%C3%A9");
        assert_eq!(Row::parse(&r.line()).expect("row"), r);
        let csv = rows_csv(&[r.clone(), row("x", "", "", false)]);
        let (d, rows) = read_rows(csv.as_bytes()).expect("rows");
        assert_eq!(d.count, 2);
        assert_eq!(rows[0], r);
        assert!(read_rows(b"\"Bucket\"\n").is_err());
    }

    #[test]
    fn a_signed_report_verifies_and_every_edit_fails() {
        let signer = Signer::from_seed("stele/t/audit/node", &[3; 32]).expect("key");
        let rows = vec![
            row("k1", "2027-01-01T00:00:00.000000Z", "COMPLIANCE", false),
            row("k2", "", "", true),
        ];
        let csv = rows_csv(&rows);
        let (digest, _) = read_rows(csv.as_bytes()).expect("rows");
        let a = Attestation {
            kind: TYPE.into(),
            origin: signer.name().into(),
            generated_at: GeneratedAt {
                trusted: "2026-06-01T00:00:00.000000Z".into(),
                wall: "2026-06-01T00:00:00.000000Z".into(),
            },
            scope: Scope {
                bucket: "b".into(),
                prefix: String::new(),
            },
            bucket: serde_json::json!({}),
            summary: Summary::of(&rows),
            time: serde_json::json!({}),
            checkpoint: crate::checkpoint::Checkpoint::new(signer.name(), 0, merkle::empty_root())
                .sign(&[&signer])
                .expect("checkpoint"),
            rows: digest,
            columns: COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        };
        let json = serde_json::to_vec_pretty(&a).expect("json");
        let sig = sign(&json, &signer).expect("sign");
        let keys = [signer.verifier()];
        let (_, c) = verify(&json, &sig, csv.as_bytes(), &keys).expect("check");
        assert!(c.verified, "{:?}", c.problems);
        // A retain-until edited in the rows.
        let edited = csv.replace("2027-01-01", "2026-07-01");
        let (_, c) = verify(&json, &sig, edited.as_bytes(), &keys).expect("check");
        assert!(!c.verified);
        // The attestation edited (its summary).
        let text = String::from_utf8(json.clone()).expect("utf-8");
        let edited = text.replacen("\"legal_holds\": 1", "\"legal_holds\": 0", 1);
        assert_ne!(edited, text);
        let (_, c) = verify(edited.as_bytes(), &sig, csv.as_bytes(), &keys).expect("check");
        assert!(!c.verified);
        // Another key.
        let other = Signer::from_seed("stele/t/audit/node", &[4; 32]).expect("key");
        let (_, c) = verify(&json, &sig, csv.as_bytes(), &[other.verifier()]).expect("check");
        assert!(!c.verified);

        // Continuity: k1 (retained past the new report) gone is a violation; k2 (held)
        // weakened is not checked for mode (it has none) but its absence would be.
        let mut later = a.clone();
        later.generated_at.trusted = "2026-09-01T00:00:00.000000Z".into();
        let v = diff(&a, &rows, &later, &rows[1..]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].key, "k1");
        // Once its retention ended, k1 may go.
        later.generated_at.trusted = "2027-02-01T00:00:00.000000Z".into();
        assert!(diff(&a, &rows, &later, &rows[1..]).is_empty());
        // A row dropped: count, hash and root no longer hold.
        let dropped = rows_csv(&rows[..1]);
        let (_, c) = verify(&json, &sig, dropped.as_bytes(), &keys).expect("check");
        assert!(!c.verified);
        // A held version gone is flagged (the reports cannot tell a lifted hold); its
        // content changed too; an expired retention may then be removed.
        let v = diff(&a, &rows, &later, &rows[..1]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].key, "k2");
        assert!(v[0].problem.contains("legal hold"), "{v:?}");
        let mut changed = rows.clone();
        changed[1].checksum = "blake3:ff".into();
        let v = diff(&a, &rows, &later, &changed);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].problem.contains("content changed"), "{v:?}");
        let mut held_expired = rows.clone();
        held_expired[1].retain_until = "2026-07-01T00:00:00.000000Z".into();
        held_expired[1].mode = "COMPLIANCE".into();
        let mut lifted = held_expired.clone();
        lifted[1].retain_until = String::new();
        lifted[1].mode = String::new();
        assert!(diff(&a, &held_expired, &later, &lifted).is_empty());
        // Shortened and weakened.
        let mut weak = rows.clone();
        weak[0].retain_until = "2026-12-01T00:00:00.000000Z".into();
        weak[0].mode = "GOVERNANCE".into();
        later.generated_at.trusted = "2026-09-01T00:00:00.000000Z".into();
        assert_eq!(diff(&a, &rows, &later, &weak).len(), 2);
    }
}
