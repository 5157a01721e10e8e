//! One set of users and keys for a cluster (issue 14, item 6: any node serves the whole
//! namespace, so any node must know every credential): identity changes go through the
//! Raft group like every other command, their secrets sealed under the cluster's
//! identity key, which `cluster init` makes and each joining node receives with its
//! certificate. Three real processes; S3 through aws-sdk-s3, admin through its API.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use stele_tests::sites::{json, three_node_cluster_after};
use stele_tests::{Server, error_code, runtime, s3_client_with};

/// What `s` answers a GET of `bucket/key` signed with (`access`, `secret`): the bytes,
/// or the S3 error code.
fn get_as(
    s: &Server,
    access: &str,
    secret: &str,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, String> {
    runtime().block_on(async {
        match s3_client_with(&s.s3_url, access, secret)
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec()),
            Err(e) => Err(error_code(&e)),
        }
    })
}

fn put_as(s: &Server, access: &str, secret: &str, bucket: &str, key: &str, body: &'static [u8]) {
    runtime().block_on(async {
        s3_client_with(&s.s3_url, access, secret)
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(body))
            .send()
            .await
            .expect("put");
    });
}

/// Polls `f` until it holds, at most 20 s: a change committed through one node is applied
/// by the others within a heartbeat or two (a bound on progress, not a speed check).
fn until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not within 20 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn user_names(s: &Server) -> Vec<String> {
    let (status, body) = s.admin("GET", "/v1/users", None);
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<String> = json(&body)
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn users_keys_and_approvals_made_through_one_node_hold_on_every_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A key made while `a` was a single node: sealed under its own master key, moved
    // under the cluster's identity key by `cluster init`.
    let early = std::cell::RefCell::new(None);
    let [a, b, c] = three_node_cluster_after(
        dir.path(),
        |_| Vec::new(),
        |a| {
            let (s, body) = a.admin("POST", "/v1/buckets", Some(r#"{"name":"ids","lock":true}"#));
            assert_eq!(s, 201, "{body}");
            *early.borrow_mut() = Some(a.user_with_key("early", "backup-writer", "s3"));
        },
    );
    let (early_key, early_secret) = early.into_inner().expect("made before init");
    for n in [&a, &b, &c] {
        put_as(
            n,
            &early_key,
            &early_secret,
            "ids",
            "early",
            b"before the cluster",
        );
    }
    until("every node lists the same users", || {
        let names = user_names(&a);
        names.contains(&"early".to_owned()) && user_names(&b) == names && user_names(&c) == names
    });

    // A key made through one node signs requests to every other.
    let (w_key, w_secret) = b.user_with_key("writer", "backup-writer", "s3");
    until("the key made through b opens on c and a", || {
        get_as(&c, &w_key, &w_secret, "ids", "early").is_ok()
            && get_as(&a, &w_key, &w_secret, "ids", "early").is_ok()
    });
    put_as(
        &c,
        &w_key,
        &w_secret,
        "ids",
        "through-c",
        b"written through c",
    );
    assert_eq!(
        get_as(&a, &w_key, &w_secret, "ids", "through-c").as_deref(),
        Ok(&b"written through c"[..])
    );

    // Revoked through one node: refused by every node (cached or not).
    let (s, body) = a.admin("DELETE", &format!("/v1/keys/{w_key}"), None);
    assert!(s == 200 || s == 204, "{s} {body}");
    for n in [&a, &b, &c] {
        until("the revoked key is refused", || {
            get_as(n, &w_key, &w_secret, "ids", "early") == Err("InvalidAccessKeyId".to_owned())
        });
    }

    // The two-person rule across nodes: a second administrator made through c; a policy
    // loosened through b waits for an approval, which the second administrator gives
    // through c; a sees the policy it carried out.
    let strict = r#"{"min_days":30,"max_days":null,"modes":["COMPLIANCE"],"below_min":"refuse"}"#;
    let loose = r#"{"min_days":1,"max_days":null,"modes":["COMPLIANCE"],"below_min":"refuse"}"#;
    let (s, body) = a.admin("PUT", "/v1/buckets/ids/retention-policy", Some(strict));
    assert_eq!(s, 200, "{body}");
    let (k2, s2) = c.user_with_key("second", "admin", "admin");
    until("the second administrator is known to b", || {
        b.admin_as(&k2, &s2, "GET", "/v1/users", None).0 == 200
    });
    let (s, body) = b.admin("PUT", "/v1/buckets/ids/retention-policy", Some(loose));
    assert_eq!(s, 202, "a second pair of eyes is asked for: {body}");
    let id = json(&body)["approval"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    until("the request is pending on c", || {
        c.admin("GET", "/v1/approvals", None).1.contains(&id)
    });
    let (s, body) = c.admin("POST", &format!("/v1/approvals/{id}/approve"), None);
    assert_eq!(
        s, 403,
        "its requester may not approve it, on any node: {body}"
    );
    assert!(body.contains("SameApprover"), "{body}");
    let (s, body) = c.approve_as(&k2, &s2, &id);
    assert_eq!(s, 200, "{body}");
    until("a holds the loosened policy", || {
        let (_, p) = a.admin("GET", "/v1/buckets/ids/retention-policy", None);
        json(&p)["min_days"] == 1
    });
    let (_, left) = a.admin("GET", "/v1/approvals", None);
    assert!(!left.contains(&id), "consumed once, everywhere: {left}");
}
