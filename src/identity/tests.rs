//! The identity store: sealed secrets, keys per plane, rotation, and the two-person rule.

use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::meta::Record;

struct Rig {
    _dir: tempfile::TempDir,
    meta: Arc<Meta>,
    clock: Arc<ManualClock>,
    ids: Identities,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Arc::new(Meta::open(&dir.path().join("meta")).expect("meta"));
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000)));
    let log = Arc::new(crate::command::IdentityProposer(Arc::new(
        crate::command::LocalLog::new(meta.clone()),
    )));
    let ids =
        Identities::open(meta.clone(), &dir.path().join("keys"), clock.clone(), log).expect("ids");
    Rig {
        _dir: dir,
        meta,
        clock,
        ids,
    }
}

fn admin(r: &Rig, name: &str) {
    r.ids.create_user(name, grant(Role::Admin)).expect("user");
    r.ids.create_key(name, Plane::Admin, None).expect("key");
}

fn grant(role: Role) -> Vec<Grant> {
    vec![Grant {
        role,
        scope: Scope::All,
    }]
}

/// A second handle on `r`'s records with its own master key (in `keys`) and cache: what
/// another cluster member is to them.
fn other_member(r: &Rig, keys: &std::path::Path) -> Identities {
    let log = Arc::new(crate::command::IdentityProposer(Arc::new(
        crate::command::LocalLog::new(r.meta.clone()),
    )));
    Identities::open(r.meta.clone(), keys, r.clock.clone(), log).expect("ids")
}

/// A change this handle did not make (another member's, applied from the Raft group)
/// empties its authentication cache as one of its own does.
#[test]
fn a_change_made_elsewhere_takes_effect_at_once() {
    let r = rig();
    r.ids
        .create_user("w", grant(Role::BackupWriter))
        .expect("user");
    let k = r.ids.create_key("w", Plane::S3, None).expect("key");
    let access = k.record.access_key.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let other = other_member(&r, dir.path());
    assert!(
        r.ids
            .credential(&access, Plane::S3)
            .expect("read")
            .is_some()
    );
    assert!(r.ids.cached(&access).is_some(), "cached by the lookup");
    other.revoke_key(&access).expect("revoke elsewhere");
    assert!(r.ids.cached(&access).is_none(), "the cache was emptied");
    assert!(
        r.ids
            .credential(&access, Plane::S3)
            .expect("read")
            .is_none()
    );
    other.set_disabled("w", true).expect("disable");
    assert!(r.ids.user_of(&access).is_err());
}

/// `cluster init`'s move: keys sealed under the node's master key are sealed again under
/// the cluster's identity key, which a member with another master key opens; once moved,
/// nothing moves again, and new keys are sealed under the cluster key from the start.
#[test]
fn keys_move_under_the_cluster_key_and_another_member_opens_them() {
    let r = rig();
    r.ids
        .create_user("w", grant(Role::BackupWriter))
        .expect("user");
    let before = r.ids.create_key("w", Plane::S3, None).expect("key");
    let dir = tempfile::tempdir().expect("tempdir");
    let other = other_member(&r, dir.path());
    let cluster = [7u8; 32];
    other.use_cluster_key(&cluster);
    assert!(
        matches!(
            other.credential(&before.record.access_key, Plane::S3),
            Err(IdentityError::Unseal)
        ),
        "sealed under the first node's master key"
    );
    r.ids.use_cluster_key(&cluster);
    let (_, secret) = r
        .ids
        .credential(&before.record.access_key, Plane::S3)
        .expect("read")
        .expect("opens under the master key until moved");
    assert_eq!(secret, before.secret);
    assert_eq!(r.ids.reseal_keys().expect("reseal"), 1);
    assert_eq!(
        r.ids.reseal_keys().expect("again"),
        0,
        "nothing left to move"
    );
    let (_, secret) = other
        .credential(&before.record.access_key, Plane::S3)
        .expect("read")
        .expect("opens under the cluster key");
    assert_eq!(secret, before.secret);
    let after = other.create_key("w", Plane::S3, None).expect("key");
    let (_, secret) = r
        .ids
        .credential(&after.record.access_key, Plane::S3)
        .expect("read")
        .expect("made under the cluster key");
    assert_eq!(secret, after.secret);
    let stored = r.ids.key(&before.record.access_key).expect("record");
    assert_eq!(stored.user, "w");
    assert_eq!(
        stored.created, before.record.created,
        "only the secret changed"
    );
}

/// A cluster member's log (agreed with others), over the local one.
struct MemberLog(crate::command::IdentityProposer);

impl IdentityLog for MemberLog {
    fn propose(
        &self,
        change: IdentityChange,
        now: Timestamp,
        by: Option<&crate::types::Requester>,
    ) -> Result<IdentityOutcome, IdentityError> {
        self.0.propose(change, now, by)
    }

    fn replicated(&self) -> bool {
        true
    }
}

/// A member without the cluster's identity key makes no key (its secret would open on
/// no other member); with it, the key is sealed under it.
#[test]
fn a_member_without_the_cluster_key_makes_no_key() {
    let r = rig();
    r.ids
        .create_user("w", grant(Role::BackupWriter))
        .expect("user");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(MemberLog(crate::command::IdentityProposer(Arc::new(
        crate::command::LocalLog::new(r.meta.clone()),
    ))));
    let member = Identities::open(r.meta.clone(), dir.path(), r.clock.clone(), log).expect("ids");
    assert!(matches!(
        member.create_key("w", Plane::S3, None),
        Err(IdentityError::KeyFile { .. })
    ));
    assert!(
        member.keys_of("w").expect("keys").is_empty(),
        "nothing stored"
    );
    member.use_cluster_key(&[9u8; 32]);
    let k = member.create_key("w", Plane::S3, None).expect("key");
    r.ids.use_cluster_key(&[9u8; 32]);
    assert!(
        r.ids
            .credential(&k.record.access_key, Plane::S3)
            .expect("read")
            .is_some()
    );
}

/// A member makes no credential and no user of its own, and never undoes the cluster's
/// state from its environment: a given key the cluster does not know is added to its
/// user once; a revoked one stays revoked; another secret for a known key is left alone.
#[test]
fn a_member_adds_an_unknown_given_key_and_changes_nothing_else() {
    let r = rig();
    r.ids.bootstrap_member(None, None).expect("nothing given");
    assert!(r.ids.users().expect("users").is_empty());
    let given = Some(("SAGIVEN".to_owned(), "given-admin-secret".to_owned()));
    let notes = r
        .ids
        .bootstrap_member(given.clone(), None)
        .expect("no user");
    assert!(notes[0].contains("no user admin"), "{notes:?}");
    assert!(r.ids.users().expect("users").is_empty(), "no user made");
    admin(&r, "admin");
    r.ids
        .bootstrap_member(given.clone(), None)
        .expect("given admin");
    let (u, secret) = r
        .ids
        .credential("SAGIVEN", Plane::Admin)
        .expect("read")
        .expect("made");
    assert_eq!(
        (u.name.as_str(), secret.as_str()),
        ("admin", "given-admin-secret")
    );
    r.ids.bootstrap_member(given.clone(), None).expect("again");
    assert_eq!(r.ids.keys_of("admin").expect("keys").len(), 2, "added once");
    let other = Some(("SAGIVEN".to_owned(), "another-secret".to_owned()));
    let notes = r.ids.bootstrap_member(other, None).expect("other secret");
    assert!(notes[0].contains("left as the cluster has it"), "{notes:?}");
    let (_, secret) = r
        .ids
        .credential("SAGIVEN", Plane::Admin)
        .expect("read")
        .expect("kept");
    assert_eq!(secret, "given-admin-secret");
    r.ids.revoke_key("SAGIVEN").expect("revoke");
    let notes = r.ids.bootstrap_member(given, None).expect("revoked");
    assert!(notes[0].contains("left revoked"), "{notes:?}");
    assert!(r.ids.key("SAGIVEN").expect("key").revoked.is_some());
}

#[test]
fn secrets_are_sealed_and_keys_open_one_plane() {
    let r = rig();
    r.ids
        .create_user("w", grant(Role::BackupWriter))
        .expect("user");
    let k = r.ids.create_key("w", Plane::S3, None).expect("key");
    let stored: KeyRecord = r
        .meta
        .kv_get(
            crate::meta::Space::Identity,
            &format!("key/{}", k.record.access_key),
        )
        .expect("get")
        .expect("stored");
    let raw = stored.encode().expect("encode");
    assert!(
        !raw.windows(k.secret.len())
            .any(|w| w == k.secret.as_bytes())
    );
    let (u, secret) = r
        .ids
        .credential(&k.record.access_key, Plane::S3)
        .expect("lookup")
        .expect("active");
    assert_eq!((u.name.as_str(), secret.as_str()), ("w", k.secret.as_str()));
    assert!(
        r.ids
            .credential(&k.record.access_key, Plane::Admin)
            .expect("lookup")
            .is_none()
    );
}

#[test]
fn rotation_keeps_the_old_key_until_revoked_and_deletion_revokes_all() {
    let r = rig();
    r.ids
        .create_user("w", grant(Role::BackupWriter))
        .expect("user");
    let old = r.ids.create_key("w", Plane::S3, None).expect("key");
    let new = r.ids.rotate_key(&old.record.access_key).expect("rotate");
    for k in [&old, &new] {
        assert!(
            r.ids
                .credential(&k.record.access_key, Plane::S3)
                .expect("lookup")
                .is_some()
        );
    }
    r.ids.revoke_key(&old.record.access_key).expect("revoke");
    assert!(
        r.ids
            .credential(&old.record.access_key, Plane::S3)
            .expect("lookup")
            .is_none()
    );
    assert!(
        r.ids
            .credential(&new.record.access_key, Plane::S3)
            .expect("lookup")
            .is_some()
    );
    r.ids.set_disabled("w", true).expect("disable");
    assert!(
        r.ids
            .credential(&new.record.access_key, Plane::S3)
            .expect("lookup")
            .is_none()
    );
    r.ids.delete_user("w").expect("delete");
    assert!(
        r.ids
            .key(&new.record.access_key)
            .expect("kept")
            .revoked
            .is_some()
    );
}

#[test]
fn the_last_admin_stays() {
    let r = rig();
    admin(&r, "a");
    assert!(matches!(
        r.ids.delete_user("a"),
        Err(IdentityError::LastAdmin)
    ));
    assert!(matches!(
        r.ids.set_disabled("a", true),
        Err(IdentityError::LastAdmin)
    ));
    admin(&r, "b");
    r.ids
        .set_disabled("a", true)
        .expect("two admins: one may go");
}

#[test]
fn two_admins_need_each_other_and_requests_expire() {
    let r = rig();
    admin(&r, "a");
    let op = Privileged::SetTwoPersonRule { enabled: false };
    assert_eq!(
        r.ids.request("a", op.clone()).expect("req"),
        Requested::Now(op.clone())
    );
    // An admin-role user without an admin-plane key is not a second pair of eyes.
    r.ids
        .create_user("s3only", grant(Role::Admin))
        .expect("user");
    r.ids.create_key("s3only", Plane::S3, None).expect("key");
    assert_eq!(
        r.ids.request("a", op.clone()).expect("req"),
        Requested::Now(op.clone())
    );
    admin(&r, "b");
    let Requested::Pending(p) = r.ids.request("a", op.clone()).expect("req") else {
        panic!("two admins: pending");
    };
    assert!(matches!(
        r.ids.approve("a", &p.id),
        Err(IdentityError::SameApprover { .. })
    ));
    assert_eq!(r.ids.approve("b", &p.id).expect("approve"), op);
    assert!(matches!(
        r.ids.approve("b", &p.id),
        Err(IdentityError::UnknownApproval { .. })
    ));
    let Requested::Pending(late) = r.ids.request("a", op.clone()).expect("req") else {
        panic!("pending");
    };
    r.clock.advance_micros(APPROVAL_WINDOW_MICROS + 1);
    assert!(matches!(
        r.ids.approve("b", &late.id),
        Err(IdentityError::ApprovalExpired { .. })
    ));
    assert!(r.ids.approvals().expect("list").is_empty());
}

#[test]
fn bootstrap_makes_an_admin_and_an_owner_once() {
    let r = rig();
    let (admin, s3) = r.ids.bootstrap(None, None).expect("bootstrap");
    let (admin, s3) = (admin.expect("generated admin"), s3.expect("generated s3"));
    assert_eq!(admin.record.plane, Plane::Admin);
    assert_eq!(s3.record.plane, Plane::S3);
    let (again_admin, again_s3) = r.ids.bootstrap(None, None).expect("again");
    assert!(again_admin.is_none() && again_s3.is_none());
    // A given credential works from then on.
    r.ids
        .bootstrap(None, Some(("GIVENKEY".into(), "given-secret".into())))
        .expect("given");
    assert_eq!(
        r.ids
            .credential("GIVENKEY", Plane::S3)
            .expect("lookup")
            .map(|c| c.1),
        Some("given-secret".to_owned())
    );
}

/// The interleaving that once left a revoked key cached: a lookup reads the key's records
/// (still active), the key is revoked, then the lookup fills the cache. The fill must not
/// take: the key is refused from the moment `revoke_key` returns.
#[test]
fn a_revocation_between_read_and_fill_is_never_undone() {
    let r = rig();
    r.ids
        .create_user("w", grant(Role::BackupWriter))
        .expect("user");
    let k = r.ids.create_key("w", Plane::S3, None).expect("key");
    let access = k.record.access_key.clone();
    // The lookup's first half: the generation it starts from, and the records it reads.
    let generation = r.ids.cache().0.generation;
    let read = r
        .ids
        .read_active(&access)
        .expect("read")
        .expect("active before the revocation");
    r.ids.revoke_key(&access).expect("revoke");
    // The lookup's second half lands after the revocation.
    r.ids.fill(&access, generation, &read);
    assert!(r.ids.cached(&access).is_none(), "a stale entry was cached");
    assert!(
        r.ids
            .credential(&access, Plane::S3)
            .expect("credential")
            .is_none(),
        "a revoked key authenticated"
    );
}

/// Revocations and disabled users racing authentications on other threads, many times:
/// once `revoke_key` (or `disable_user`) has returned, no authentication succeeds.
#[test]
fn revocations_racing_authentications_always_win() {
    let r = Arc::new(rig());
    r.ids
        .create_user("w", grant(Role::BackupWriter))
        .expect("user");
    for round in 0..150 {
        let k = r.ids.create_key("w", Plane::S3, None).expect("key");
        let access = k.record.access_key.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (r, access, stop) = (r.clone(), access.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let _ = r.ids.credential(&access, Plane::S3);
                    }
                })
            })
            .collect();
        // Let the racers fill the cache, then revoke under them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while r.ids.cached(&access).is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the racers never filled the cache"
            );
            std::thread::yield_now();
        }
        if round % 2 == 0 {
            r.ids.revoke_key(&access).expect("revoke");
        } else {
            r.ids.set_disabled("w", true).expect("disable");
        }
        // Racers still running after the change: none may bring the key back.
        std::thread::sleep(std::time::Duration::from_micros(200));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in racers {
            t.join().expect("racer");
        }
        assert!(
            r.ids
                .credential(&access, Plane::S3)
                .expect("credential")
                .is_none(),
            "round {round}: the key authenticates after its revocation"
        );
        if round % 2 == 1 {
            r.ids.set_disabled("w", false).expect("enable");
        }
    }
}

/// The check-then-writes are commands applied one at a time: two administrators
/// demoting each other at once never leave the node without one, and one name is
/// created once however many ask at the same time.
#[test]
fn racing_identity_writes_keep_the_last_admin_and_unique_names() {
    let r = Arc::new(rig());
    admin(&r, "a");
    admin(&r, "b");
    for round in 0..50 {
        let threads: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let r = r.clone();
                std::thread::spawn(move || r.ids.set_disabled(name, true))
            })
            .collect();
        let results: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let done = results.iter().filter(|x| x.is_ok()).count();
        let last = results
            .iter()
            .filter(|x| matches!(x, Err(IdentityError::LastAdmin)))
            .count();
        assert_eq!((done, last), (1, 1), "round {round}: {results:?}");
        assert_eq!(r.ids.admins().expect("admins").len(), 1);
        for name in ["a", "b"] {
            r.ids.set_disabled(name, false).expect("enable");
        }
        let name = format!("u{round}");
        let creators: Vec<_> = (0..4)
            .map(|_| {
                let (r, name) = (r.clone(), name.clone());
                std::thread::spawn(move || r.ids.create_user(&name, grant(Role::Auditor)))
            })
            .collect();
        let created = creators
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .filter(|x| x.is_ok())
            .count();
        assert_eq!(created, 1, "round {round}");
    }
}
