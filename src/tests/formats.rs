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
    BelowMinimum, BucketActivity, BucketRecord, CompletedUpload, DefaultRetention, InlineRecord,
    LifecycleConfig, LifecycleRule, LockRecord, LockRequest, PartRecord, PendingRecord, Record,
    RepairReason, RepairRecord, Retention, RetentionMode, RetentionPeriod, RetentionPolicy,
    SegmentRecord, ShardPlacement, ShardRecord, SystemMeta, TagSet, UploadRecord, VersionKind,
    VersionRecord, Versioning,
};
use crate::types::{BucketName, ObjectKey, SegmentId, Timestamp, VersionId};

/// Distinct times, so two time fields swapped change the bytes.
const T1: Timestamp = Timestamp(64);
const T2: Timestamp = Timestamp(65);
const T3: Timestamp = Timestamp(66);

fn bucket() -> BucketName {
    BucketName::new("bkt").expect("name")
}

fn key() -> ObjectKey {
    ObjectKey::new("k").expect("key")
}

/// A record's name and current bytes as hex, after checking that the bytes decode back
/// to the record.
fn entry<R: Record + PartialEq + std::fmt::Debug>(r: R) -> (&'static str, String) {
    let bytes = r.encode().expect("encode");
    assert_eq!(R::decode(&bytes).expect("decode"), r, "{}", R::NAME);
    (R::NAME, hex::encode(bytes))
}

fn raft_log_id(term: u64, index: u64) -> openraft::LogId<u64> {
    openraft::LogId::new(openraft::CommittedLeaderId::new(term, 0x0d), index)
}

fn raft_entry() -> openraft::Entry<crate::consensus::TypeConfig> {
    openraft::Entry {
        log_id: raft_log_id(5, 9),
        payload: openraft::EntryPayload::Normal(crate::consensus::Proposal(vec![0x0e, 0x0f])),
    }
}

/// Each record's current bytes, by name, as hex. Fields hold values no neighbour holds,
/// so two fields swapped change the bytes.
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
        max_days: Some(9),
        modes: vec![RetentionMode::Compliance],
        below_min: BelowMinimum::Raise,
    };
    let checksum = Checksum {
        algorithm: ChecksumAlgorithm::Crc32c,
        value: vec![1, 2, 3, 4],
    };
    vec![
        entry(BucketRecord {
            name: bucket(),
            created: T1,
            versioning: Versioning::Enabled,
            object_lock: true,
            default_retention: Some(DefaultRetention {
                mode: RetentionMode::Governance,
                period: RetentionPeriod::Years(2),
            }),
            policy: Some(policy.clone()),
            quota: Some(1 << 40),
        }),
        entry(VersionRecord {
            version_id: VersionId([1; 16]),
            created: T1,
            kind: VersionKind::Object,
            size: 5,
            etag: "e".into(),
            content_type: Some("t/p".into()),
            user_meta: vec![("a".into(), "b".into())],
            checksums: vec![checksum.clone()],
            segments: vec![seg.clone()],
            null_version: false,
            inline: true,
            composite_checksum: false,
            system: SystemMeta {
                content_encoding: Some("gzip".into()),
                cache_control: None,
                content_disposition: Some("d".into()),
                content_language: None,
                expires: Some(T2),
            },
            blake3: vec![[0x3b; 32]],
            origin: crate::meta::Origin::Replica,
        }),
        entry(LockRecord {
            retention: Some(Retention {
                mode: RetentionMode::Compliance,
                until: T2,
            }),
            legal_hold: true,
        }),
        entry(LifecycleConfig {
            rules: vec![LifecycleRule {
                id: "r".into(),
                enabled: true,
                prefix: "p/".into(),
                expiration_days: Some(3),
                expired_delete_markers: false,
                noncurrent_days: Some(4),
                newer_noncurrent_versions: None,
                abort_multipart_days: Some(5),
            }],
        }),
        entry(crate::meta::BucketGeo {
            profile: Some((5, 4)),
            site_down_writes: crate::meta::SiteDownWrites::Refuse,
        }),
        entry(UploadRecord {
            upload_id: SegmentId([3; 16]),
            bucket: bucket(),
            key: key(),
            created: T1,
            content_type: None,
            user_meta: Vec::new(),
            tags: vec![("t".into(), "v".into())],
            lock: LockRequest {
                retention: None,
                legal_hold: Some(true),
            },
            system: SystemMeta::default(),
            checksum_algorithm: Some(ChecksumAlgorithm::Sha256),
        }),
        entry(PartRecord {
            part_number: 3,
            etag: "e".into(),
            size: 5,
            created: T1,
            checksums: vec![checksum],
            segment: Some(seg),
            blake3: Some([0x3c; 32]),
        }),
        entry(CompletedUpload {
            bucket: bucket(),
            key: key(),
            version_id: VersionId([1; 16]),
            null_version: true,
            etag: "e-1".into(),
            size: 5,
            checksums: Vec::new(),
            parts: vec![(1, "p".into())],
            completed: T2,
        }),
        entry(PendingRecord {
            segment: SegmentId([2; 16]),
            shards: vec![(1, "d1".into())],
            created: T1,
        }),
        entry(RepairRecord {
            bucket: bucket(),
            key: key(),
            version_id: VersionId([1; 16]),
            segment: SegmentId([2; 16]),
            shards: vec![5],
            reason: RepairReason::Corrupt,
            queued: T1,
            due: T2,
            attempts: 3,
            last_error: Some("x".into()),
        }),
        entry(ShardPlacement {
            disk: "d4".into(),
            root: [9; 32],
        }),
        entry(TagSet {
            tags: vec![("a".into(), "b".into())],
        }),
        entry(InlineRecord {
            blake3: [9; 32],
            data: b"xy".to_vec(),
        }),
        entry(BucketActivity { last_write: T3 }),
        entry(UserRecord {
            name: "u".into(),
            created: T1,
            disabled: false,
            grants: vec![Grant {
                role: Role::BackupWriter,
                scope: Scope::Buckets(vec![bucket()]),
            }],
            bypass_governance: Some(Scope::All),
        }),
        entry(KeyRecord {
            access_key: "K".into(),
            user: "u".into(),
            plane: Plane::Admin,
            sealed_secret: vec![5, 6],
            created: T1,
            revoked: Some(T2),
        }),
        entry(ApprovalRecord {
            id: "a".into(),
            operation: Privileged::LoosenPolicy {
                bucket: bucket(),
                policy: Some(policy),
            },
            requested_by: "u".into(),
            created: T1,
            expires: T2,
        }),
        entry(Settings {
            two_person_rule: true,
        }),
        entry(ClockRecord { high_water: T1 }),
        entry(crate::command::Stamped {
            cmd: crate::command::MetaCommand::UpdateLock {
                bucket: bucket(),
                key: key(),
                version_id: VersionId([1; 16]),
                change: crate::command::LockChange::Retention {
                    requested: Some(Retention {
                        mode: RetentionMode::Governance,
                        until: T2,
                    }),
                    bypass: true,
                },
            },
            now: crate::lock::Now {
                earliest: T1,
                latest: T2,
                wall: Timestamp(3),
            },
            by: Some(crate::audit::Requester {
                user: Some("u".into()),
                key: Some("AK".into()),
                source: Some("10.0.0.1:1".into()),
                request_id: Some("r".into()),
            }),
        }),
        entry(AnomalyRecord {
            count: 2,
            last: Some(Anomaly {
                at: T1,
                step_micros: -3,
            }),
        }),
        entry(crate::background::scrub::Checkpoint {
            bucket: bucket(),
            after: key(),
            report: crate::background::scrub::ScrubReport {
                started: Some(T1),
                finished: Some(T2),
                versions: 1,
                shards_verified: 2,
                bytes_verified: 3,
                missing: 4,
                corrupt: 5,
                repaired: 6,
                unrepairable: vec![crate::background::scrub::Unrepairable {
                    bucket: bucket(),
                    key: key(),
                    version_id: "null".into(),
                    stripe: 7,
                }],
                resumed: true,
                keys_before_resume: 8,
                keys: 9,
                duration_ms: 10,
                orphans_quarantined: 11,
            },
        }),
        entry(crate::background::lifecycle::Checkpoint {
            started: T1,
            bucket: bucket(),
            after: Some(key()),
        }),
        entry(SinkRecord {
            name: "ops".into(),
            url: "http://x/".into(),
            created: T1,
        }),
        entry(QueuedAlert {
            id: "q".into(),
            sink: "ops".into(),
            payload: "{}".into(),
            raised: T1,
            attempts: 1,
            next_attempt: T2,
            last_error: Some("e".into()),
        }),
        entry(Expectation {
            bucket: "bkt".into(),
            every_secs: 86_400,
            alerted_for: Some(T1),
        }),
        entry(crate::replication::PeerRecord {
            name: "b".into(),
            id: 2,
            endpoint: "https://b:9000".into(),
            trust: crate::replication::PeerTrust::Fingerprint([0x5a; 32]),
            access_key: "AK".into(),
            sealed_secret: vec![9, 8],
            created: T1,
        }),
        entry(crate::replication::BucketReplication {
            bucket: bucket(),
            rules: vec![crate::replication::ReplicationRule {
                id: "r".into(),
                enabled: true,
                prefix: "p/".into(),
                peer: "b".into(),
                target_bucket: BucketName::new("dst").expect("name"),
                delete_markers: false,
                rpo_alert_secs: 900,
                bandwidth: Some(3),
                backfill: true,
            }],
        }),
        entry(crate::replication::log::DeadEntry {
            entry: crate::replication::log::LogEntry {
                op: crate::replication::log::LogOp::Lock,
                bucket: bucket(),
                key: key(),
                version_id: VersionId([1; 16]),
                target: BucketName::new("dst").expect("name"),
                size: 5,
                enqueued_at: T1,
                class: crate::replication::log::EntryClass::Backfill,
                rule: "r".into(),
            },
            seq: 7,
            reason: crate::replication::log::DeadReason::Conflict,
            detail: "d".into(),
            parked_at: T2,
        }),
        entry(crate::replication::log::LogEntry {
            op: crate::replication::log::LogOp::DeleteMarker,
            bucket: bucket(),
            key: key(),
            version_id: VersionId([4; 16]),
            target: BucketName::new("dst").expect("name"),
            size: 0,
            enqueued_at: T3,
            class: crate::replication::log::EntryClass::Live,
            rule: "r".into(),
        }),
        entry(crate::background::backfill::BackfillProgress {
            rule: "b|dst|false|p/".into(),
            after: Some((key(), VersionId([6; 16]))),
            scanned: 3,
            queued: 2,
            done_at: Some(T2),
        }),
        entry(crate::replication::SourceRecord {
            access_key: "AK".into(),
            received_at: T1,
            heartbeat: crate::replication::Heartbeat {
                sent_at: T2,
                head: 9,
                backlog_entries: 2,
                backlog_bytes: 3,
                oldest: Some(T3),
            },
        }),
        entry(crate::replication::epoch::WriterEpoch {
            bucket: bucket(),
            epoch: 2,
            role: crate::replication::epoch::Role::Primary,
            reason: crate::replication::epoch::EpochReason::Promoted,
            since: T2,
            source: Some("AK".into()),
            promotion: Some(crate::replication::epoch::Promotion {
                last_heard: Some(T1),
                heartbeat: Some(crate::replication::Heartbeat {
                    sent_at: T1,
                    head: 4,
                    backlog_entries: 1,
                    backlog_bytes: 5,
                    oldest: Some(T3),
                }),
                at: T2,
            }),
        }),
        entry(crate::background::replication_audit::AuditReport {
            bucket: "bkt".into(),
            rule: "r".into(),
            peer: "b".into(),
            started: Some(T1),
            finished: Some(T2),
            after: Some((key(), VersionId([6; 16]))),
            checked: 3,
            missing: 1,
            mismatched: 1,
            named: vec![(
                key(),
                VersionId([7; 16]),
                crate::background::replication_audit::Finding::Missing,
            )],
            error: Some("e".into()),
        }),
        entry(crate::replication::ReplicaOp::Version(Box::new(
            crate::replication::ReplicaVersion {
                version_id: VersionId([1; 16]),
                created: T1,
                size: 5,
                etag: "e".into(),
                content_type: Some("t/p".into()),
                user_meta: vec![("a".into(), "b".into())],
                system: SystemMeta::default(),
                checksums: Vec::new(),
                composite_checksum: false,
                parts: vec![(5, [0x3d; 32])],
                lock: LockRecord {
                    retention: Some(Retention {
                        mode: RetentionMode::Compliance,
                        until: T2,
                    }),
                    legal_hold: false,
                },
                tags: vec![("t".into(), "v".into())],
            },
        ))),
        entry(crate::meta::BucketUsage {
            bytes: 1 << 33,
            objects: 7,
            upload_bytes: 5 << 20,
        }),
        entry(crate::audit::log::Head {
            size: 3,
            last: [7; 32],
            frontier: vec![(1, [1; 32]), (0, [2; 32])],
            checkpointed: 2,
        }),
        entry(crate::membership::ClusterIdentity {
            cluster_id: "c1".into(),
            ca_fingerprint: "ab".into(),
            created: Timestamp(5),
        }),
        entry(crate::membership::JoinToken {
            issued: Timestamp(6),
            expires: Timestamp(7),
            used: Some(("n2".into(), Timestamp(8))),
        }),
        entry(crate::membership::Member {
            node_id: "n3".into(),
            cert_fingerprint: "cd".into(),
            joined: Timestamp(9),
            removed: Some(Timestamp(10)),
        }),
        entry(crate::membership::NodeDisks {
            node_id: "n3".into(),
            site: "s1".into(),
            disks: vec![crate::membership::ClusterDisk {
                id: "d0".into(),
                uuid: crate::disk::DiskUuid([0xab; 16]),
            }],
            reported: Timestamp(11),
        }),
        entry(crate::membership::layout::Layout {
            epoch: 4,
            disks: vec![crate::membership::layout::LayoutDisk {
                uuid: crate::disk::DiskUuid([0xab; 16]),
                id: "d0".into(),
                node_id: "n3".into(),
                site: "s1".into(),
                weight: 0,
            }],
            since: Timestamp(12),
        }),
        entry(crate::membership::layout::StagedLayout {
            base: 4,
            weights: vec![(crate::disk::DiskUuid([0xab; 16]), 3)],
            staged: Timestamp(13),
        }),
        entry(crate::background::rebalance::Checkpoint {
            bucket: BucketName::new("bkt").expect("bucket"),
            after: ObjectKey::new("k").expect("key"),
            report: crate::background::rebalance::RebalanceReport {
                started: Some(Timestamp(14)),
                finished: None,
                epoch: 4,
                versions: 5,
                moves: crate::store::Moves {
                    moved: 1,
                    bytes: 2,
                    waiting: 3,
                    raced: 4,
                },
                old_copies_removed: 6,
            },
        }),
        entry(crate::store::OldCopy {
            disk: "ab".repeat(16),
            segment: crate::types::SegmentId([5; 16]),
            index: 2,
            due: Timestamp(15),
        }),
        entry(crate::consensus::StoredEntry(raft_entry())),
        entry(crate::consensus::StoredVote(openraft::Vote::new_committed(
            4, 6,
        ))),
        entry(crate::consensus::StoredPurged(raft_log_id(2, 7))),
        entry(crate::consensus::AppliedState {
            last: Some(raft_log_id(3, 8)),
            membership: openraft::StoredMembership::new(
                Some(raft_log_id(1, 3)),
                openraft::Membership::new(
                    vec![std::collections::BTreeSet::from([0x0a, 0x0b])],
                    Some(std::collections::BTreeSet::from([0x0c])),
                ),
            ),
        }),
        entry(crate::consensus::SnapshotRecords {
            records: vec![("versions".into(), vec![1, 2], vec![3])],
        }),
        entry(crate::lock::clock::PeerClockRecord {
            offset_micros: -5,
            skewed: true,
        }),
    ]
}

/// The golden bytes: change one only together with a format bump of that record.
const GOLDEN: &[(&str, &str)] = &[
    (
        "bucket",
        "0303626b748001010101000102010101010901010101808080808020",
    ),
    (
        "version",
        "08010101010101010101010101010101018001000501650103742f7001016101620101040102030401020202020202020202020202020202020201802005010264300107070707070707070707070707070707070707070707070707070707070707070001000104677a69700001016400018201013b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b02",
    ),
    ("lock", "010101820101"),
    ("lifecycle", "010101720102702f0103000104000105"),
    ("bucket-geo", "0101050401"),
    (
        "upload",
        "040303030303030303030303030303030303626b74016b80010000010174017600010100000000000103",
    ),
    (
        "part",
        "03030165058001010104010203040102020202020202020202020202020202020180200501026430010707070707070707070707070707070707070707070707070707070707070707013c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c",
    ),
    (
        "completed-upload",
        "0103626b74016b010101010101010101010101010101010103652d310500010101708201",
    ),
    (
        "pending",
        "020202020202020202020202020202020201010264318001",
    ),
    (
        "repair",
        "0203626b74016b01010101010101010101010101010101020202020202020202020202020202020105028001820103010178",
    ),
    (
        "shard-placement",
        "020264340909090909090909090909090909090909090909090909090909090909090909",
    ),
    ("tags", "010101610162"),
    (
        "inline",
        "010909090909090909090909090909090909090909090909090909090909090909027879",
    ),
    ("bucket-activity", "018401"),
    ("user", "0101758001000100010103626b740100"),
    ("key", "01014b0175010205068001018201"),
    ("approval", "0101610003626b740101010109010101017580018201"),
    ("identity-settings", "0101"),
    ("clock", "018001"),
    (
        "command",
        "040203626b74016b010101010101010101010101010101010001008201018001820106010101750102414b010a31302e302e302e313a31010172",
    ),
    ("clock-anomalies", "010201800105"),
    (
        "scrub-checkpoint",
        "0203626b74016b0180010182010102030405060103626b74016b046e756c6c070108090a0b",
    ),
    ("lifecycle-checkpoint", "01800103626b7401016b"),
    ("alert-sink", "01036f707309687474703a2f2f782f8001"),
    ("queued-alert", "010171036f7073027b7d8001018201010165"),
    ("expectation", "0103626b7480a305018001"),
    (
        "replication-peer",
        "010162020e68747470733a2f2f623a39303030015a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a02414b0209088001",
    ),
    (
        "replication-rules",
        "0103626b740101720102702f016203647374008407010301",
    ),
    (
        "replication-dead-entry",
        "010203626b74016b0101010101010101010101010101010103647374058001010172070301648201",
    ),
    (
        "replication-log-entry",
        "010103626b74016b0404040404040404040404040404040403647374008401000172",
    ),
    (
        "backfill-progress",
        "010e627c6473747c66616c73657c702f01016b060606060606060606060606060606060302018201",
    ),
    ("replication-source", "0102414b80018201090203018401"),
    (
        "replication-epoch",
        "0103626b7402000282010102414b010180010180010401050184018201",
    ),
    (
        "replication-audit",
        "0103626b740172016201800101820101016b0606060606060606060606060606060603010101016b0707070707070707070707070707070700010165",
    ),
    (
        "replication-request",
        "01000101010101010101010101010101010180010501650103742f7001016101620000000000000001053d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d01018201000101740176",
    ),
    ("bucket-usage", "018080808020078080c002"),
    (
        "audit-head",
        "010307070707070707070707070707070707070707070707070707070707070707070201010101010101010101010101010101010101010101010101010101010101010100020202020202020202020202020202020202020202020202020202020202020202",
    ),
    ("cluster-identity", "010263310261620a"),
    ("join-token", "010c0e01026e3210"),
    ("cluster-member", "01026e33026364120114"),
    (
        "cluster-node-disks",
        "01026e330273310102643020616261626162616261626162616261626162616261626162616261626162616216",
    ),
    (
        "cluster-layout",
        "010401206162616261626162616261626162616261626162616261626162616261626162026430026e330273310018",
    ),
    (
        "cluster-layout-staged",
        "010401206162616261626162616261626162616261626162616261626162616261626162031a",
    ),
    ("rebalance-checkpoint", "0103626b74016b011c0004050102030406"),
    (
        "rebalance-old-copy",
        "0120616261626162616261626162616261626162616261626162616261626162616205050505050505050505050505050505021e",
    ),
    ("raft-entry", "01050d0901020e0f"),
    ("raft-vote", "01040601"),
    ("raft-purged", "01020d07"),
    ("raft-applied", "0101030d0801010d0301020a0b030a000b000c00"),
    ("raft-snapshot", "01010876657273696f6e730201020103"),
    ("clock-peers", "010901"),
];

/// The records whose disk field changed meaning (node-local id → disk UUID) kept their
/// bytes: the previous format's bytes decode to the same record.
#[test]
fn records_naming_disks_decode_their_previous_format() {
    fn same<R: Record + PartialEq + std::fmt::Debug>(name: &str, previous: u8) {
        let (_, hex) = GOLDEN.iter().find(|(n, _)| *n == name).expect("pinned");
        let mut bytes = hex::decode(hex).expect("hex");
        let now = R::decode(&bytes).expect("current");
        bytes[0] = previous;
        assert_eq!(R::decode(&bytes).expect("previous"), now, "{name}");
    }
    same::<PendingRecord>("pending", 1);
    same::<ShardPlacement>("shard-placement", 1);
}

/// `version` at format 6 and `part` at format 2, as pinned before the BLAKE3 digests.
/// A version record of format 7 (before the origin): the pinned record's bytes without
/// its last field.
const VERSION_V7: &str = "07010101010101010101010101010101018001000501650103742f7001016101620101040102030401020202020202020202020202020202020201802005010264300107070707070707070707070707070707070707070707070707070707070707070001000104677a69700001016400018201013b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b";

const VERSION_V6: &str = "06010101010101010101010101010101018001000501650103742f7001016101620101040102030401020202020202020202020202020202020201802005010264300107070707070707070707070707070707070707070707070707070707070707070001000104677a69700001016400018201";
const PART_V2: &str = "02030165058001010104010203040102020202020202020202020202020202020180200501026430010707070707070707070707070707070707070707070707070707070707070707";

/// Records written before the BLAKE3 digests (version formats 5 and 6, part formats 1
/// and 2, whose disk fields differ only in meaning) decode to today's record with no
/// digest, every other field unchanged.
#[test]
fn records_before_the_digests_decode_without_one() {
    fn check<R: Record + PartialEq + std::fmt::Debug>(
        name: &str,
        old_hex: &str,
        formats: [u8; 2],
        strip: impl Fn(R) -> R,
    ) {
        let (_, hex) = GOLDEN.iter().find(|(n, _)| *n == name).expect("pinned");
        let now = strip(R::decode(&hex::decode(hex).expect("hex")).expect("current"));
        let mut bytes = hex::decode(old_hex).expect("hex");
        for f in formats {
            bytes[0] = f;
            assert_eq!(
                R::decode(&bytes).expect("old format"),
                now,
                "{name} format {f}"
            );
        }
    }
    check::<VersionRecord>("version", VERSION_V6, [5, 6], |mut v| {
        v.blake3.clear();
        v.origin = crate::meta::Origin::Client;
        v
    });
    check::<VersionRecord>("version", VERSION_V7, [7, 7], |mut v| {
        v.origin = crate::meta::Origin::Client;
        v
    });
    check::<PartRecord>("part", PART_V2, [1, 2], |mut p| {
        p.blake3 = None;
        p
    });
}

/// A bucket record of format 2 (before quotas): the pinned record of that format.
const BUCKET_V2: &str = "0203626b7480010101010001020101010109010101";

/// A bucket record written before quotas reads as one without a quota, every other field
/// unchanged.
#[test]
fn a_bucket_before_quotas_decodes_without_one() {
    let (_, hex) = GOLDEN.iter().find(|(n, _)| *n == "bucket").expect("pinned");
    let mut now = BucketRecord::decode(&hex::decode(hex).expect("hex")).expect("current");
    now.quota = None;
    let old = BucketRecord::decode(&hex::decode(BUCKET_V2).expect("hex")).expect("format 2");
    assert_eq!(old, now);
}

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

/// Every record type of the core (every `impl Record`, found in the sources) is pinned
/// here, so a new one cannot go unpinned.
#[test]
fn every_record_type_is_pinned() {
    fn names(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("src").flatten() {
            let p = e.path();
            if p.is_dir() {
                names(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).expect("source");
                // Only the code before a file's test module: test-only records are not
                // persisted.
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
                for line in code.lines() {
                    if let Some(rest) = line.trim().strip_prefix("const NAME: &'static str = \"") {
                        out.push(rest.trim_end_matches("\";").to_owned());
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    names(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found.retain(|n| n != "unserialisable");
    found.sort();
    let mut pinned: Vec<String> = GOLDEN.iter().map(|(n, _)| (*n).to_owned()).collect();
    pinned.sort();
    assert_eq!(found, pinned);
}
/// A disk's stamp and a shard file's trailer, as they are on disk: a disk formatted by
/// this release must open under the next, and a shard file written today must verify then.
#[test]
fn the_disk_stamp_and_the_shard_trailer_keep_their_bytes() {
    use crate::config::DiskSpec;
    use crate::disk::{LocalDisk, ShardName, ShardStore, local::shard_path};
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = LocalDisk::open(DiskSpec {
        id: "d0".into(),
        path: dir.path().join("d0"),
        node: "node1".into(),
        site: "site1".into(),
    })
    .expect("open");
    let stamp = std::fs::read_to_string(dir.path().join("d0/.stele-disk")).expect("stamp");
    let uuid = disk.uuid().expect("uuid");
    assert_eq!(
        stamp,
        format!("format = 2\nid = \"d0\"\nuuid = \"{uuid}\"\n")
    );
    let seg = SegmentId([2; 16]);
    let mut w = disk.create(ShardName::new(seg, 0), 4).expect("create");
    w.append(b"abcd").expect("block 0");
    w.append(b"ef").expect("block 1");
    let root = w.finish().expect("finish");
    let bytes = std::fs::read(shard_path(disk.root(), ShardName::new(seg, 0))).expect("shard file");
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

/// A disk stamped by the previous release (format 1: id only) gets its UUID at open, once,
/// and keeps its shards; a stamp newer than this release reads is refused.
#[test]
fn a_format_1_stamp_is_upgraded_and_a_newer_one_refused() {
    use crate::config::DiskSpec;
    use crate::disk::{DiskError, Expect, LocalDisk, ShardName, ShardStore};
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = DiskSpec {
        id: "d0".into(),
        path: dir.path().join("d0"),
        node: "node1".into(),
        site: "site1".into(),
    };
    let disk = LocalDisk::open(spec.clone()).expect("open");
    let name = ShardName::new(SegmentId([3; 16]), 1);
    let mut w = disk.create(name, 4).expect("create");
    w.append(b"abcd").expect("block");
    let root = w.finish().expect("finish");
    drop(disk);
    let stamp = dir.path().join("d0/.stele-disk");
    std::fs::write(&stamp, "format = 1\nid = \"d0\"\n").expect("old stamp");
    let disk = LocalDisk::open(spec.clone()).expect("reopen");
    let uuid = disk.uuid().expect("upgraded");
    assert_eq!(
        std::fs::read_to_string(&stamp).expect("stamp"),
        format!("format = 2\nid = \"d0\"\nuuid = \"{uuid}\"\n")
    );
    let expect = Expect {
        block_size: 4,
        blocks: 1,
        data_len: 4,
        root,
    };
    let mut buf = [0u8; 4];
    disk.open(name, &expect)
        .expect("open shard")
        .read_block(0, &mut buf)
        .expect("read");
    assert_eq!(&buf, b"abcd");
    drop(disk);
    // Opened again, the UUID stays.
    assert_eq!(
        LocalDisk::open(spec.clone()).expect("again").uuid(),
        Some(uuid)
    );
    std::fs::write(&stamp, "format = 3\nid = \"d0\"\n").expect("newer stamp");
    assert!(matches!(
        LocalDisk::open(spec),
        Err(DiskError::UnknownStampFormat { format: 3, .. })
    ));
}

/// A command of an older format whose bytes did not change (here the pinned
/// `UpdateLock`) reads as today's; one that embeds a version record is refused rather
/// than misread.
#[test]
fn commands_of_older_formats_read_where_their_bytes_are_unchanged() {
    // The pinned UpdateLock as format 3 wrote it (no requester).
    let v3 = "030203626b74016b010101010101010101010101010101010001008201018001820106";
    let (_, hex) = GOLDEN
        .iter()
        .find(|(n, _)| *n == "command")
        .expect("pinned");
    let mut now =
        crate::command::Stamped::decode(&hex::decode(hex).expect("hex")).expect("current");
    now.by = None;
    for format in [1, 2, 3] {
        let mut bytes = hex::decode(v3).expect("hex");
        bytes[0] = format;
        assert_eq!(
            crate::command::Stamped::decode(&bytes).expect("older format"),
            now,
            "format {format}"
        );
        // CommitVersion is variant 0 of MetaCommand.
        bytes[1] = 0;
        assert!(
            crate::command::Stamped::decode(&bytes).is_err(),
            "format {format}"
        );
    }
}

/// A membership command (the last `MetaCommand` variant) keeps its bytes: nodes of one
/// cluster will exchange them in the Raft log.
#[test]
fn a_membership_command_keeps_its_bytes() {
    let c = crate::command::Stamped {
        cmd: crate::command::MetaCommand::Cluster(crate::membership::ClusterChange::Join {
            token_hash: [3; 32],
            node_id: "n4".into(),
            cert_fingerprint: "ef".into(),
        }),
        now: crate::lock::Now::at(Timestamp(11)),
        by: None,
    };
    let bytes = c.encode().expect("encode");
    assert_eq!(crate::command::Stamped::decode(&bytes).expect("decode"), c);
    assert_eq!(
        hex::encode(&bytes),
        "0409020303030303030303030303030303030303030303030303030303030303030303026e3402656616161600"
    );
}

/// A bucket's erasure coding across sites (`SetBucketGeo`, appended last), pinned.
#[test]
fn the_bucket_geo_command_keeps_its_bytes() {
    let c = crate::command::Stamped {
        cmd: crate::command::MetaCommand::SetBucketGeo {
            bucket: bucket(),
            config: Some(crate::meta::BucketGeo {
                profile: Some((5, 4)),
                site_down_writes: crate::meta::SiteDownWrites::Refuse,
            }),
        },
        now: crate::lock::Now::at(Timestamp(11)),
        by: None,
    };
    let bytes = c.encode().expect("encode");
    assert_eq!(crate::command::Stamped::decode(&bytes).expect("decode"), c);
    assert_eq!(hex::encode(&bytes), "041103626b74010105040116161600");
}

/// The layout's membership commands (appended after `Disks`), pinned.
#[test]
fn the_layout_commands_keep_their_bytes() {
    use crate::membership::ClusterChange;
    let pinned = [
        (
            ClusterChange::StageWeight {
                disk: crate::disk::DiskUuid([2; 16]),
                weight: 0,
            },
            "0409052030323032303230323032303230323032303230323032303230323032303230320016161600",
        ),
        (ClusterChange::ApplyLayout { expect: 7 }, "0409060716161600"),
        (ClusterChange::RevertLayout, "04090716161600"),
    ];
    for (change, hex_bytes) in pinned {
        let c = crate::command::Stamped {
            cmd: crate::command::MetaCommand::Cluster(change),
            now: crate::lock::Now::at(Timestamp(11)),
            by: None,
        };
        let bytes = c.encode().expect("encode");
        assert_eq!(crate::command::Stamped::decode(&bytes).expect("decode"), c);
        assert_eq!(hex::encode(&bytes), hex_bytes, "{c:?}");
    }
}
