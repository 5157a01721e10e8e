//! How `stelectl` is told to trust a node's TLS certificate: `--ca FILE` or
//! `--fingerprint HEX` (not both). The trust itself, and the rustls configuration that
//! checks it, are [`stele_client::tls`]'s, shared with the server's replication sender.

use std::path::Path;

use anyhow::bail;
use stele_client::tls::{Trust, parse_fingerprint};

/// `--ca` or `--fingerprint` (not both); `None` when neither is given.
///
/// # Errors
/// Both given, or a fingerprint that is not 32 bytes of hex.
pub fn from_flags(ca: Option<&Path>, fingerprint: Option<&str>) -> anyhow::Result<Option<Trust>> {
    match (ca, fingerprint) {
        (Some(_), Some(_)) => bail!("give --ca or --fingerprint, not both"),
        (Some(p), None) => Ok(Some(Trust::Ca(p.to_owned()))),
        (None, Some(f)) => Ok(Some(Trust::Fingerprint(parse_fingerprint(f)?))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flag_or_none() {
        let hex64 = "ab".repeat(32);
        assert!(from_flags(Some(Path::new("x")), Some(&hex64)).is_err());
        assert_eq!(from_flags(None, None).expect("none"), None);
        assert_eq!(
            from_flags(Some(Path::new("x")), None).expect("ca"),
            Some(Trust::Ca("x".into()))
        );
        assert_eq!(
            from_flags(None, Some(&vec!["AB"; 32].join(":"))).expect("pin"),
            Some(Trust::Fingerprint([0xab; 32]))
        );
        let bad = from_flags(None, Some("abcd")).expect_err("short");
        assert!(bad.to_string().contains("not 32"), "{bad}");
    }
}
