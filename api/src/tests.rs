//! The wire spelling, pinned: the server writes these types and `stelectl` reads them, so
//! one test per shape here is what catches a renamed field, a retyped value or a changed
//! enum spelling before a deployed client or script does.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Timestamp;
use crate::alerts::{Expectation, PayloadKind};
use crate::approvals::{
    Approval, Operation, OperationBelowMin, OperationMode, OperationPolicy, OperationScope,
    Outcome, PendingApproval,
};
use crate::buckets::{NewBucket, Policy};
use crate::errors::ErrorBody;
use crate::identities::{Bypass, Grant, Key, KeyRequest, Plane, User};
use crate::node::{DiskState, DiskStatus, Health, HealthState};
use crate::workers::{WorkerScope, WorkerStatus};

/// `value` serializes to exactly `json` and reads back from it unchanged.
#[track_caller]
fn pinned<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T, json: &str) {
    let written = serde_json::to_string(&value).expect("serialize");
    assert_eq!(written, json);
    let read: T = serde_json::from_str(json).expect("deserialize");
    assert_eq!(read, value);
}

#[test]
fn error_body() {
    pinned(
        ErrorBody {
            error: "BucketExists".into(),
            message: "bucket b exists".into(),
        },
        r#"{"error":"BucketExists","message":"bucket b exists"}"#,
    );
    // A client reads an error without a message as an empty one.
    let e: ErrorBody = serde_json::from_str(r#"{"error":"SlowDown"}"#).expect("error");
    assert_eq!(e.message, "");
}

#[test]
fn disk_status() {
    pinned(
        DiskStatus {
            id: "d0".into(),
            path: "/srv/d0".into(),
            node: "node1".into(),
            site: "site1".into(),
            state: DiskState::Full,
            uuid: Some("00112233445566778899aabbccddeeff".into()),
            free_bytes: Some(4096),
        },
        r#"{"id":"d0","path":"/srv/d0","node":"node1","site":"site1","state":"full","uuid":"00112233445566778899aabbccddeeff","free_bytes":4096}"#,
    );
    pinned(
        DiskStatus {
            id: "d1".into(),
            path: "/srv/d1".into(),
            node: "node1".into(),
            site: "site1".into(),
            state: DiskState::Offline,
            uuid: None,
            free_bytes: None,
        },
        r#"{"id":"d1","path":"/srv/d1","node":"node1","site":"site1","state":"offline","uuid":null,"free_bytes":null}"#,
    );
}

#[test]
fn worker_status() {
    pinned(
        WorkerStatus {
            name: "alert-delivery".into(),
            scope: WorkerScope::Node,
            running: false,
            paused: true,
            passes: 3,
            failed_passes: 1,
            last_failure: Some("metadata store: closed".into()),
            interval_secs: 60,
            standby: true,
        },
        r#"{"name":"alert-delivery","scope":"node","running":false,"paused":true,"passes":3,"failed_passes":1,"last_failure":"metadata store: closed","interval_secs":60,"standby":true}"#,
    );
    // As servers before clusters wrote it.
    let old: WorkerStatus = serde_json::from_str(
        r#"{"name":"lifecycle","scope":"node","running":false,"paused":false,"passes":0,"failed_passes":0,"last_failure":null,"interval_secs":60}"#,
    )
    .expect("decodes");
    assert!(!old.standby);
}

#[test]
fn health_and_times() {
    pinned(
        Health {
            status: HealthState::ClockAnomaly,
            clock_anomalies: 2,
            clock_behind_wall_micros: 172_800_000_000,
        },
        r#"{"status":"clock-anomaly","clock_anomalies":2,"clock_behind_wall_micros":172800000000}"#,
    );
    // An older server's answer, without the lag, still reads.
    let old: Health =
        serde_json::from_str(r#"{"status":"ok","clock_anomalies":0}"#).expect("older health");
    assert_eq!(old.clock_behind_wall_micros, 0);
    pinned(Timestamp(1_767_225_600_000_000), "1767225600000000");
}

#[test]
fn users_and_grants() {
    pinned(
        User {
            name: "alice".into(),
            disabled: false,
            grants: vec![
                Grant {
                    role: "admin".into(),
                    buckets: None,
                },
                Grant {
                    role: "backup-writer".into(),
                    buckets: Some(vec!["b1".into()]),
                },
            ],
            governance_bypass: Some(Bypass { buckets: None }),
            keys: vec![Key {
                access_key: "SKX".into(),
                plane: Plane::S3,
                created: Timestamp(5),
                revoked: None,
            }],
        },
        r#"{"name":"alice","disabled":false,"grants":[{"role":"admin","buckets":null},{"role":"backup-writer","buckets":["b1"]}],"governance_bypass":{"buckets":null},"keys":[{"access_key":"SKX","plane":"s3","created":5,"revoked":null}]}"#,
    );
    // Requests may leave optional fields out.
    let g: Grant = serde_json::from_str(r#"{"role":"auditor"}"#).expect("grant");
    assert_eq!(g.buckets, None);
    let k: KeyRequest = serde_json::from_str("{}").expect("key request");
    assert_eq!(k.plane, None);
    let b: NewBucket = serde_json::from_str(r#"{"name":"b"}"#).expect("bucket");
    assert!(!b.lock && b.retention_mode.is_none() && b.retention_days.is_none());
}

#[test]
fn policies() {
    pinned(
        Some(Policy {
            min_days: Some(7),
            max_days: None,
            modes: vec!["COMPLIANCE".into()],
            below_min: "refuse".into(),
        }),
        r#"{"min_days":7,"max_days":null,"modes":["COMPLIANCE"],"below_min":"refuse"}"#,
    );
    pinned(None::<Policy>, "null");
    pinned(
        Expectation {
            every_secs: Some(86_400),
        },
        r#"{"every_secs":86400}"#,
    );
}

#[test]
fn outcomes_and_operations() {
    pinned(Outcome::done(), r#"{"status":"done"}"#);
    pinned(
        Outcome::pending(PendingApproval {
            expires: Timestamp(9),
            id: "ab12".into(),
            operation: Operation::GrantBypass {
                scope: Some(OperationScope::Buckets(vec!["vault".into()])),
                user: "carol".into(),
            },
            requested_by: "admin".into(),
        }),
        r#"{"approval":{"expires":9,"id":"ab12","operation":{"GrantBypass":{"scope":{"Buckets":["vault"]},"user":"carol"}},"requested_by":"admin"},"status":"pending"}"#,
    );
    pinned(
        Approval {
            created: Timestamp(1),
            expires: Timestamp(2),
            id: "cd34".into(),
            operation: Operation::LoosenPolicy {
                bucket: "b1".into(),
                policy: Some(OperationPolicy {
                    below_min: OperationBelowMin::Raise,
                    max_days: None,
                    min_days: Some(1),
                    modes: vec![OperationMode::Governance, OperationMode::Compliance],
                }),
            },
            requested_by: "admin".into(),
        },
        r#"{"created":1,"expires":2,"id":"cd34","operation":{"LoosenPolicy":{"bucket":"b1","policy":{"below_min":"Raise","max_days":null,"min_days":1,"modes":["Governance","Compliance"]}}},"requested_by":"admin"}"#,
    );
    pinned(
        Operation::GrantBypass {
            scope: Some(OperationScope::All),
            user: "u".into(),
        },
        r#"{"GrantBypass":{"scope":"All","user":"u"}}"#,
    );
    pinned(
        Operation::DeleteAdmin { user: "bob".into() },
        r#"{"DeleteAdmin":{"user":"bob"}}"#,
    );
    pinned(
        Operation::SetTwoPersonRule { enabled: false },
        r#"{"SetTwoPersonRule":{"enabled":false}}"#,
    );
    pinned(
        Operation::ResyncClock {
            advance_micros: 172_800_000_000,
        },
        r#"{"ResyncClock":{"advance_micros":172800000000}}"#,
    );
    let k: PayloadKind =
        serde_json::from_str(r#"{"kind":"test","raised":1,"alert":{"kind":"test","message":"m"}}"#)
            .expect("payload");
    assert_eq!(k.kind, "test");
}

/// A newer server may send a state this release does not know (sites run mixed
/// releases): it reads as `Unknown`, and the rest of the answer still reads.
#[test]
fn unknown_enum_values_read_as_unknown() {
    let d: DiskState = serde_json::from_str(r#""draining""#).expect("disk state");
    assert_eq!(d, DiskState::Unknown);
    let h: HealthState = serde_json::from_str(r#""degraded""#).expect("health");
    assert_eq!(h, HealthState::Unknown);
    let p: Plane = serde_json::from_str(r#""rpc""#).expect("plane");
    assert_eq!(p, Plane::Unknown);
    let s: WorkerScope = serde_json::from_str(r#""site""#).expect("scope");
    assert_eq!(s, WorkerScope::Unknown);
    let o: crate::approvals::OutcomeStatus = serde_json::from_str(r#""queued""#).expect("outcome");
    assert_eq!(o, crate::approvals::OutcomeStatus::Unknown);
    // Known spellings are unchanged.
    assert_eq!(
        serde_json::from_str::<DiskState>(r#""online""#).expect("online"),
        DiskState::Online
    );
}

#[test]
fn replication_peers() {
    use crate::replication::{NewPeer, Peer, TrustKind};
    pinned(
        Peer {
            name: "site-b".into(),
            id: 1,
            endpoint: "https://b:9000".into(),
            trust: TrustKind::Fingerprint,
            fingerprint: Some("ab".repeat(32)),
            access_key: "SKB".into(),
            created: Timestamp(7),
        },
        &format!(
            r#"{{"name":"site-b","id":1,"endpoint":"https://b:9000","trust":"fingerprint","fingerprint":"{}","access_key":"SKB","created":7}}"#,
            "ab".repeat(32)
        ),
    );
    // A request may leave out the trust it does not use.
    let p: NewPeer = serde_json::from_str(
        r#"{"name":"b","endpoint":"http://127.0.0.1:1","access_key":"K","secret_key":"S"}"#,
    )
    .expect("new peer");
    assert_eq!((p.ca_pem, p.fingerprint), (None, None));
    let t: TrustKind = serde_json::from_str(r#""spiffe""#).expect("trust");
    assert_eq!(t, TrustKind::Unknown);
}

#[test]
fn replication_rules() {
    use crate::replication::{BucketReplication, Rule};
    pinned(
        BucketReplication {
            rules: vec![Rule {
                id: "r1".into(),
                enabled: true,
                prefix: "db/".into(),
                peer: "b".into(),
                target_bucket: "dr".into(),
                delete_markers: false,
                rpo_alert_secs: 900,
                bandwidth_bytes_per_sec: Some(1_000_000),
                backfill: true,
            }],
        },
        r#"{"rules":[{"id":"r1","enabled":true,"prefix":"db/","peer":"b","target_bucket":"dr","delete_markers":false,"rpo_alert_secs":900,"bandwidth_bytes_per_sec":1000000,"backfill":true}]}"#,
    );
    // The defaults of a rule left short.
    let r: Rule =
        serde_json::from_str(r#"{"id":"r","peer":"b","target_bucket":"t"}"#).expect("rule");
    assert!(r.enabled && !r.delete_markers && !r.backfill);
    assert_eq!((r.prefix.as_str(), r.rpo_alert_secs), ("", 900));
    assert_eq!(r.bandwidth_bytes_per_sec, None);
}

#[test]
fn replication_status_and_dead_entries() {
    use crate::replication::{DeadEntry, DeadReason, Op, PeerStatus, Retried, Unreplicated};
    pinned(
        PeerStatus {
            name: "b".into(),
            endpoint: "http://127.0.0.1:1".into(),
            rpo_seconds: 1.5,
            rpo_alert_seconds: Some(900),
            backlog_entries: 2,
            backlog_bytes: 10,
            backfill_entries: 0,
            oldest: Some(Unreplicated {
                bucket: "src".into(),
                key: "k".into(),
                version_id: "v1".into(),
                enqueued_at: Timestamp(3),
                seq: 4,
            }),
            dead: [("conflict".to_owned(), 1)].into_iter().collect(),
            oldest_dead: Some(Timestamp(2)),
            head_seq: 5,
            buckets: vec!["src".into()],
            sending: true,
            link_up: false,
            breaker_open: true,
            failures_in_row: 3,
            last_error: Some("connection refused".into()),
            last_ack: None,
            sent_entries: 1,
            sent_bytes: 6,
            lock_divergences: 0,
            parked: 1,
            backfill_skipped: 2,
            resumed_parts: 3,
            throughput_bytes_per_sec: 0.0,
            drain_eta_seconds: None,
            bandwidth_bytes_per_sec: None,
            paused: false,
            at: Timestamp(9),
        },
        r#"{"name":"b","endpoint":"http://127.0.0.1:1","rpo_seconds":1.5,"rpo_alert_seconds":900,"backlog_entries":2,"backlog_bytes":10,"backfill_entries":0,"oldest":{"bucket":"src","key":"k","version_id":"v1","enqueued_at":3,"seq":4},"dead":{"conflict":1},"oldest_dead":2,"head_seq":5,"buckets":["src"],"sending":true,"link_up":false,"breaker_open":true,"failures_in_row":3,"last_error":"connection refused","last_ack":null,"sent_entries":1,"sent_bytes":6,"lock_divergences":0,"parked":1,"backfill_skipped":2,"resumed_parts":3,"throughput_bytes_per_sec":0.0,"drain_eta_seconds":null,"bandwidth_bytes_per_sec":null,"paused":false,"at":9}"#,
    );
    pinned(
        DeadEntry {
            bucket: "src".into(),
            key: "k".into(),
            version_id: "v1".into(),
            op: Op::DeleteMarker,
            target_bucket: "dr".into(),
            size: 0,
            rule: "r1".into(),
            reason: DeadReason::NoSuchBucket,
            detail: "NoSuchBucket".into(),
            parked_at: Timestamp(8),
            enqueued_at: Timestamp(3),
            seq: 4,
        },
        r#"{"bucket":"src","key":"k","version_id":"v1","op":"delete_marker","target_bucket":"dr","size":0,"rule":"r1","reason":"no_such_bucket","detail":"NoSuchBucket","parked_at":8,"enqueued_at":3,"seq":4}"#,
    );
    pinned(Retried { retried: 3 }, r#"{"retried":3}"#);
    let r: DeadReason = serde_json::from_str(r#""quota""#).expect("reason");
    assert_eq!(r, DeadReason::Unknown);
    let o: Op = serde_json::from_str(r#""tag""#).expect("op");
    assert_eq!(o, Op::Unknown);
}
