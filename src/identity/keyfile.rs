//! The key folder: the node's master key (which seals every secret) and, when the first
//! administrator's credential was generated, a copy of it for the operator. It lives
//! outside the data folder, so a copy of the data alone reveals no secret.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::IdentityError;

const MASTER: &str = "master.key";
const FIRST_ADMIN: &str = "first-admin";

fn err(path: &Path, message: impl Into<String>) -> IdentityError {
    IdentityError::KeyFile {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Writes `contents` to a new file readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), IdentityError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| err(path, e.to_string()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(|e| err(path, e.to_string()))
}

/// The text of a key file, refused if others can read it: fix its mode rather than run
/// with it.
fn read_private(path: &Path) -> Result<String, IdentityError> {
    let mode = std::fs::metadata(path)
        .map_err(|e| err(path, e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(err(
            path,
            format!("mode {:o} lets others read it; chmod 600", mode & 0o777),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| err(path, e.to_string()))
}

/// The master key in `dir`, generated (with the folder, mode 0700) on first start. A key
/// file that others can read is refused: fix its mode rather than run with it.
pub fn master_key(dir: &Path) -> Result<[u8; 32], IdentityError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| err(dir, e.to_string()))?;
    }
    let path = dir.join(MASTER);
    if !path.exists() {
        let key = crate::crypto::random_bytes::<32>();
        write_private(&path, hex::encode(key).as_bytes())?;
        tracing::info!(path = %path.display(), "created the master key");
        return Ok(key);
    }
    let text = read_private(&path)?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key).map_err(|_| err(&path, "not 64 hex digits"))?;
    Ok(key)
}

/// Whether `dir` already keeps a first administrator credential (another node's, when
/// two nodes share a key folder).
pub fn first_admin_exists(dir: &Path) -> bool {
    dir.join(FIRST_ADMIN).exists()
}

/// Keeps a generated first administrator credential for the operator (mode 0600).
pub fn write_first_admin(dir: &Path, access_key: &str, secret: &str) -> Result<(), IdentityError> {
    let path = dir.join(FIRST_ADMIN);
    write_private(
        &path,
        format!("STELE_ADMIN_KEY={access_key}\nSTELE_ADMIN_SECRET={secret}\n").as_bytes(),
    )
}

/// The audit trail's signing key (an Ed25519 seed) for the log `log_id`, from
/// `audit-<log_id>.key` in `dir` (hex of the seed sealed by `seal`), generated and written
/// (mode 0600, whole or not at all) on first use unless `must_exist` (the log has signed
/// checkpoints: a new key would sign its history as its own); returns it and whether it was made now.
/// One file per log, so nodes that share a key folder never share a key.
///
/// # Errors
/// [`IdentityError::KeyFile`] for a file that is missing while `must_exist`, cannot be
/// written or read, is readable by others, or does not hold hex; `open`'s error for one
/// that does not unseal.
pub fn audit_key(
    dir: &Path,
    log_id: &str,
    must_exist: bool,
    seal: impl FnOnce(&str) -> Vec<u8>,
    open: impl FnOnce(&[u8]) -> Result<String, IdentityError>,
) -> Result<([u8; 32], bool), IdentityError> {
    let path = dir.join(format!("audit-{log_id}.key"));
    if !path.exists() {
        if must_exist {
            return Err(err(
                &path,
                "missing, while the audit trail holds checkpoints signed with it: restore \
                 it from the key folder's backup (a new key would re-sign history)",
            ));
        }
        let seed = crate::crypto::random_bytes::<32>();
        // Written aside, then renamed: a crash leaves no empty key file behind.
        let tmp = dir.join(format!("audit-{log_id}.key.tmp"));
        let _ = std::fs::remove_file(&tmp);
        write_private(&tmp, hex::encode(seal(&hex::encode(seed))).as_bytes())?;
        std::fs::rename(&tmp, &path).map_err(|e| err(&path, e.to_string()))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| err(dir, e.to_string()))?;
        return Ok((seed, true));
    }
    let text = read_private(&path)?;
    let sealed = hex::decode(text.trim()).map_err(|_| err(&path, "not hex"))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(open(&sealed)?.trim(), &mut seed)
        .map_err(|_| err(&path, "does not hold a 32-byte key"))?;
    Ok((seed, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_key_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let k1 = master_key(&keys).expect("create");
        let k2 = master_key(&keys).expect("read");
        assert_eq!(k1, k2);
        let mode = std::fs::metadata(keys.join(MASTER))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(keys.join(MASTER), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        assert!(master_key(&keys).is_err(), "a readable key file is refused");
    }
}
