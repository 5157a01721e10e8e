//! ACLs, minimally and honestly. Stele has no ACLs: a caller's roles decide what it may do.
//! But backup clients probe them, so reads answer what is true (the owner holds
//! FULL_CONTROL, nobody else holds anything) and writes accept what changes nothing — the
//! canned ACLs `private` and `bucket-owner-full-control`, or a grant list holding only the
//! owner's FULL_CONTROL — and refuse anything wider with Amazon S3's answer for buckets
//! whose ACLs are disabled (Object Ownership "bucket owner enforced", its default since
//! 2023): 400 `AccessControlListNotSupported`.

use s3s::dto;
use s3s::{S3Error, S3ErrorCode, S3Result};

/// The one owner every bucket and object has.
pub fn owner() -> dto::Owner {
    dto::Owner {
        display_name: Some("stele".into()),
        id: Some("stele".into()),
    }
}

/// The only grant there is: the owner's FULL_CONTROL.
pub fn grants() -> dto::Grants {
    vec![dto::Grant {
        grantee: Some(dto::Grantee {
            display_name: Some("stele".into()),
            email_address: None,
            id: Some("stele".into()),
            type_: dto::Type::from_static(dto::Type::CANONICAL_USER),
            uri: None,
        }),
        permission: Some(dto::Permission::from_static(dto::Permission::FULL_CONTROL)),
    }]
}

fn not_supported() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("AccessControlListNotSupported".into()),
        "The bucket does not allow ACLs: access is decided by the caller's roles; only \
         'private' (the owner's FULL_CONTROL) is accepted.",
    );
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

/// A canned ACL (`x-amz-acl`): `private` and `bucket-owner-full-control` change nothing.
pub fn check_canned(acl: Option<&str>) -> S3Result<()> {
    match acl {
        None | Some("private" | "bucket-owner-full-control") => Ok(()),
        Some(_) => Err(not_supported()),
    }
}

/// The `x-amz-grant-*` headers of a request: any grant is wider than the owner alone
/// (the owner's own FULL_CONTROL, `id="stele"`, excepted).
pub fn check_grant_headers(full_control: Option<&str>, others: [Option<&str>; 4]) -> S3Result<()> {
    let owner_only = |g: &str| {
        g.split(',').all(|one| {
            matches!(
                one.trim().replace(' ', "").as_str(),
                "id=\"stele\"" | "id=stele"
            )
        })
    };
    if full_control.is_some_and(|g| !owner_only(g)) || others.iter().any(Option::is_some) {
        return Err(not_supported());
    }
    Ok(())
}

/// An `AccessControlPolicy` body: accepted only when it grants exactly what is true.
pub fn check_policy(policy: Option<&dto::AccessControlPolicy>) -> S3Result<()> {
    let Some(p) = policy else { return Ok(()) };
    let grants = p.grants.as_deref().unwrap_or_default();
    // Exactly the owner's FULL_CONTROL: an empty list would take the owner's away.
    let only_owner = grants.len() == 1
        && grants.iter().all(|g| {
            g.permission.as_ref().map(|p| p.as_str()) == Some(dto::Permission::FULL_CONTROL)
                && g.grantee.as_ref().is_some_and(|e| {
                    e.type_.as_str() == dto::Type::CANONICAL_USER
                        && e.id.as_deref() == Some("stele")
                })
        });
    let owner_kept = p
        .owner
        .as_ref()
        .is_none_or(|o| o.id.as_deref().is_none_or(|id| id == "stele"));
    if only_owner && owner_kept {
        Ok(())
    } else {
        Err(not_supported())
    }
}
