//! Veeam's Smart Object Storage API (SOSAPI): two XML documents under every bucket that
//! Veeam Backup & Replication reads with plain GET and HEAD to learn what the target is
//! and how much room is left ("S3 Integrated" repositories).
//!
//! The specification is given to Veeam's partners only; the shapes here are those working
//! implementations serve (MinIO's `veeam-sos-api`, minio/minio#17195 for the quoting that
//! Veeam requires). The documents are generated on each request, never stored, counted,
//! locked or replicated; the folder that holds them, at the bucket's root only, is
//! reserved: writes and deletes under it are refused. A `.system-...` folder deeper in a
//! key is an ordinary key.

use crate::checksum::Md5;
use crate::meta::{SystemMeta, VersionKind, VersionRecord};
use crate::types::{Timestamp, VersionId};

/// The reserved folder at a bucket's root, with its trailing slash.
pub const FOLDER: &str = ".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c/";

/// The id a document's one version has inside the store (clients see `null`): fixed, so
/// that a request pinned to the version it read (a copy's source) finds it again.
pub const VERSION: VersionId = VersionId(*b"stele-sosapi-doc");

/// The content type both documents are served with.
pub const CONTENT_TYPE: &str = "application/xml";

/// Whether `key` lies in the reserved folder (writes and deletes there are refused).
pub fn is_reserved(key: &str) -> bool {
    key.starts_with(FOLDER)
}

/// One of the two generated documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// `system.xml`: protocol version, model name, capabilities.
    System,
    /// `capacity.xml`: capacity, available and used bytes.
    Capacity,
}

impl Document {
    /// Both, in key order (as listings return them).
    pub const ALL: [Document; 2] = [Document::Capacity, Document::System];

    /// The document `key` names, if it names one exactly.
    pub fn named(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.key() == key)
    }

    /// The document's object key.
    pub fn key(self) -> &'static str {
        match self {
            Document::System => ".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c/system.xml",
            Document::Capacity => ".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c/capacity.xml",
        }
    }
}

/// What `capacity.xml` reports, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// The bucket's hard quota if it has one, else the usable capacity of the node's
    /// disks after erasure coding.
    pub capacity: u64,
    /// What may still be written: the quota's rest (never more than the disks' usable
    /// free space), else the disks' usable free space.
    pub available: u64,
    /// The bucket's usage (every object version, kept at commit time).
    pub used: u64,
}

/// `system.xml` for a server whose model is `model` (`Stele 0.1.0`). The protocol
/// version and the model are inside literal double quotes, which Veeam requires; the
/// recommendations block is left out (Veeam's defaults apply), and so is `APIEndpoints`
/// while IAM/STS is not offered.
pub fn system_xml(model: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <SystemInfo>\n\
         \x20 <ProtocolVersion>\"1.0\"</ProtocolVersion>\n\
         \x20 <ModelName>\"{}\"</ModelName>\n\
         \x20 <ProtocolCapabilities>\n\
         \x20   <CapacityInfo>true</CapacityInfo>\n\
         \x20   <UploadSessions>false</UploadSessions>\n\
         \x20   <IAMSTS>false</IAMSTS>\n\
         \x20 </ProtocolCapabilities>\n\
         </SystemInfo>\n",
        escape(model)
    )
}

/// `capacity.xml` for `c`.
pub fn capacity_xml(c: &Capacity) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <CapacityInfo>\n\
         \x20 <Capacity>{}</Capacity>\n\
         \x20 <Available>{}</Available>\n\
         \x20 <Used>{}</Used>\n\
         </CapacityInfo>\n",
        c.capacity, c.available, c.used
    )
}

/// The version record a generated document is served as: the key's null version, an
/// object of `body`'s length whose ETag is its MD5 (as for any single-part object), of
/// type `application/xml`, last modified at `modified`. Nothing reads its segments: the
/// body comes with it.
pub fn record(body: &[u8], modified: Timestamp) -> VersionRecord {
    let mut md5 = Md5::default();
    md5.update(body);
    VersionRecord {
        version_id: VERSION,
        created: modified,
        kind: VersionKind::Object,
        size: body.len() as u64,
        etag: hex::encode(md5.finish()),
        content_type: Some(CONTENT_TYPE.to_owned()),
        user_meta: Vec::new(),
        checksums: Vec::new(),
        segments: Vec::new(),
        null_version: true,
        inline: true,
        composite_checksum: false,
        system: SystemMeta::default(),
        blake3: vec![*blake3::hash(body).as_bytes()],
        origin: crate::meta::Origin::Client,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_xml_quotes_the_version_and_the_model() {
        let x = system_xml("Stele 0.1.0");
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SystemInfo>"));
        assert!(x.contains("<ProtocolVersion>\"1.0\"</ProtocolVersion>"));
        assert!(x.contains("<ModelName>\"Stele 0.1.0\"</ModelName>"));
        assert!(x.contains("<CapacityInfo>true</CapacityInfo>"));
        assert!(!x.contains("SystemRecommendations"));
        assert!(!x.contains("APIEndpoints"));
    }

    #[test]
    fn only_the_root_folder_is_reserved() {
        assert!(is_reserved(Document::System.key()));
        assert!(is_reserved(&format!("{FOLDER}other")));
        assert!(!is_reserved(&format!("a/{FOLDER}system.xml")));
        assert!(!is_reserved(".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c"));
        assert_eq!(
            Document::named(Document::Capacity.key()),
            Some(Document::Capacity)
        );
        assert_eq!(
            Document::named(&format!("x/{}", Document::System.key())),
            None
        );
    }

    #[test]
    fn the_record_is_a_null_version_with_the_md5_etag() {
        let body = capacity_xml(&Capacity {
            capacity: 10,
            available: 4,
            used: 6,
        });
        let r = record(body.as_bytes(), Timestamp::from_micros(1_000_000));
        assert_eq!(r.size, body.len() as u64);
        assert!(r.null_version);
        assert_eq!(r.etag.len(), 32);
        assert_eq!(r.content_type.as_deref(), Some(CONTENT_TYPE));
    }
}
