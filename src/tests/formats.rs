//! The current format of every persisted record, pinned as golden bytes: a field added,
//! removed or reordered without a format bump (and an upgrade from the old bytes) fails
//! here. Older formats are decoded by each record's own tests.

use crate::alert::{Expectation, QueuedAlert, SinkRecord};
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::geometry::Geometry;
use crate::identity::{
    ApprovalRecord, Grant, KeyRecord, Plane, Privileged, Role, Scope, Settings, UserRecord,
};
use crate::lock::clock::{Anomaly, AnomalyRecord, ClockRecord};
use crate::meta::{
    BelowMinimum, BucketActivity, BucketRecord, DefaultRetention, InlineRecord, PartRecord,
    PendingRecord, Record, RetentionMode, RetentionPeriod, RetentionPolicy, SegmentRecord,
    ShardRecord, TagSet, Versioning,
};
use crate::types::{BucketName, ObjectKey, SegmentId, Timestamp};

const T: Timestamp = Timestamp(64);

fn bucket() -> BucketName {
    BucketName::new("bkt").expect("name")
}

/// Each record's current bytes, by name, as hex.
fn current() -> Vec<(&'static str, String)> {
    let seg = SegmentRecord {
        id: SegmentId([2; 16]),
        geometry: Geometry::new(2, 1, 4096, 5),
        shards: vec![ShardRecord {
            disk: "d0".into(),
            root: Some([7; 32]),
        }],
    };
    let policy = RetentionPolicy {
        min_days: Some(1),
        max_days: None,
        modes: vec![RetentionMode::Compliance],
        below_min: BelowMinimum::Raise,
    };
    let scope = Scope::Buckets(vec![bucket()]);
    let enc = |r: Result<Vec<u8>, crate::meta::MetaError>| hex::encode(r.expect("encode"));
    vec![
        (
            "bucket",
            enc(BucketRecord {
                name: bucket(),
                created: T,
                versioning: Versioning::Enabled,
                object_lock: true,
                default_retention: Some(DefaultRetention {
                    mode: RetentionMode::Governance,
                    period: RetentionPeriod::Years(2),
                }),
                policy: Some(policy.clone()),
            }
            .encode()),
        ),
        (
            "part",
            enc(PartRecord {
                part_number: 3,
                etag: "e".into(),
                size: 5,
                created: T,
                checksums: vec![Checksum {
                    algorithm: ChecksumAlgorithm::Crc32c,
                    value: vec![1, 2, 3, 4],
                }],
                segment: Some(seg.clone()),
            }
            .encode()),
        ),
        (
            "pending",
            enc(PendingRecord {
                segment: SegmentId([2; 16]),
                shards: vec![(1, "d1".into())],
                created: T,
            }
            .encode()),
        ),
        (
            "tags",
            enc(TagSet {
                tags: vec![("a".into(), "b".into())],
            }
            .encode()),
        ),
        (
            "inline",
            enc(InlineRecord {
                blake3: [9; 32],
                data: b"xy".to_vec(),
            }
            .encode()),
        ),
        (
            "user",
            enc(UserRecord {
                name: "u".into(),
                created: T,
                disabled: false,
                grants: vec![Grant {
                    role: Role::BackupWriter,
                    scope: scope.clone(),
                }],
                bypass_governance: Some(Scope::All),
            }
            .encode()),
        ),
        (
            "key",
            enc(KeyRecord {
                access_key: "K".into(),
                user: "u".into(),
                plane: Plane::Admin,
                sealed_secret: vec![5, 6],
                created: T,
                revoked: Some(T),
            }
            .encode()),
        ),
        (
            "approval",
            enc(ApprovalRecord {
                id: "a".into(),
                operation: Privileged::LoosenPolicy {
                    bucket: bucket(),
                    policy: Some(policy),
                },
                requested_by: "u".into(),
                created: T,
                expires: T,
            }
            .encode()),
        ),
        (
            "identity-settings",
            enc(Settings {
                two_person_rule: true,
            }
            .encode()),
        ),
        ("clock", enc(ClockRecord { high_water: T }.encode())),
        (
            "clock-anomalies",
            enc(AnomalyRecord {
                count: 2,
                last: Some(Anomaly {
                    at: T,
                    step_micros: -3,
                }),
            }
            .encode()),
        ),
        (
            "scrub-checkpoint",
            enc(crate::scrub::Checkpoint {
                bucket: bucket(),
                after: ObjectKey::new("k").expect("key"),
                report: crate::scrub::ScrubReport {
                    versions: 1,
                    unrepairable: vec![crate::scrub::Unrepairable {
                        bucket: bucket(),
                        key: ObjectKey::new("k").expect("key"),
                        version_id: "null".into(),
                        stripe: 2,
                    }],
                    orphans_quarantined: 3,
                    ..Default::default()
                },
            }
            .encode()),
        ),
        (
            "alert-sink",
            enc(SinkRecord {
                name: "ops".into(),
                url: "http://x/".into(),
                created: T,
            }
            .encode()),
        ),
        (
            "queued-alert",
            enc(QueuedAlert {
                id: "q".into(),
                sink: "ops".into(),
                payload: "{}".into(),
                raised: T,
                attempts: 1,
                next_attempt: T,
                last_error: Some("e".into()),
            }
            .encode()),
        ),
        (
            "bucket-activity",
            enc(BucketActivity { last_write: T }.encode()),
        ),
        (
            "expectation",
            enc(Expectation {
                bucket: "bkt".into(),
                every_secs: 86_400,
                alerted_for: Some(T),
            }
            .encode()),
        ),
    ]
}

/// The golden bytes: change one only together with a format bump of that record.
const GOLDEN: &[(&str, &str)] = &[
    ("bucket", "0203626b74800101010100010201010100010101"),
    (
        "part",
        concat!(
            "010301650580010101040102030401020202020202020202020202020202020201802005",
            "01026430010707070707070707070707070707070707070707070707070707070707070707",
        ),
    ),
    (
        "pending",
        "010202020202020202020202020202020201010264318001",
    ),
    ("tags", "010101610162"),
    (
        "inline",
        "010909090909090909090909090909090909090909090909090909090909090909027879",
    ),
    ("user", "0101758001000100010103626b740100"),
    ("key", "01014b0175010205068001018001"),
    ("approval", "0101610003626b7401010100010101017580018001"),
    ("identity-settings", "0101"),
    ("clock", "018001"),
    ("clock-anomalies", "010201800105"),
    (
        "scrub-checkpoint",
        "0203626b74016b00000100000000000103626b74016b046e756c6c020000000003",
    ),
    ("alert-sink", "01036f707309687474703a2f2f782f8001"),
    ("queued-alert", "010171036f7073027b7d8001018001010165"),
    ("bucket-activity", "018001"),
    ("expectation", "0103626b7480a305018001"),
];

#[test]
fn every_record_keeps_its_current_bytes() {
    let now = current();
    let printed: Vec<String> = now
        .iter()
        .map(|(name, hex)| format!("    (\"{name}\", \"{hex}\"),"))
        .collect();
    assert_eq!(
        now.len(),
        GOLDEN.len(),
        "every record is pinned; current bytes:\n{}",
        printed.join("\n")
    );
    for ((name, hex), (golden_name, golden)) in now.iter().zip(GOLDEN) {
        assert_eq!((name, hex.as_str()), (golden_name, *golden), "{name}");
    }
}

/// A disk's stamp and a shard file's trailer, as they are on disk: a disk formatted by
/// this release must open under the next, and a shard file written today must verify then.
#[test]
fn the_disk_stamp_and_the_shard_trailer_keep_their_bytes() {
    use crate::config::DiskSpec;
    use crate::disk::Disk;
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = std::sync::Arc::new(
        Disk::open(DiskSpec {
            id: "d0".into(),
            path: dir.path().join("d0"),
            node: "node1".into(),
            site: "site1".into(),
        })
        .expect("open"),
    );
    let stamp = std::fs::read_to_string(dir.path().join("d0/.stele-disk")).expect("stamp");
    assert_eq!(stamp, "format = 1\nid = \"d0\"\n");
    let seg = SegmentId([2; 16]);
    let mut w = disk.create_shard(&seg, 0, 4).expect("create");
    w.append(b"abcd").expect("block 0");
    w.append(b"ef").expect("block 1");
    let root = w.finish().expect("finish");
    let bytes = std::fs::read(disk.shard_path(&seg, 0)).expect("shard file");
    let hashes = [
        *blake3::hash(b"abcd").as_bytes(),
        *blake3::hash(b"ef").as_bytes(),
    ]
    .concat();
    assert_eq!(root, *blake3::hash(&hashes).as_bytes());
    let mut expected = b"abcdef".to_vec();
    expected.extend(&hashes);
    // "STELE-SH", format 1, block size 4, 2 blocks, 6 data bytes (little-endian), root.
    expected.extend(
        hex::decode("5354454c452d53480100000004000000020000000000000006000000").expect("hex"),
    );
    expected.extend([0u8; 4]);
    expected.extend(root);
    assert_eq!(bytes, expected);
}
