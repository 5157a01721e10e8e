//! Virtual-host-style addressing: `BUCKET.DOMAIN[:port]` names a bucket; any other host
//! (an IP address, the bare domain, another name) is path-style. s3s's own `SingleDomain`
//! neither strips the port nor leaves other hosts path-style.

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

pub struct Domain {
    domain: String,
}

impl Domain {
    /// `domain` must be a plain DNS name.
    pub fn new(domain: &str) -> Option<Self> {
        let ok = !domain.is_empty()
            && domain.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        ok.then(|| Self {
            domain: domain.to_ascii_lowercase(),
        })
    }
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl Domain {
    /// The bucket a `Host` header names in virtual-host style, if it names one.
    pub fn bucket_of<'a>(&self, host: &'a str) -> Option<&'a str> {
        strip_port(host)
            .strip_suffix(self.domain.as_str())
            .and_then(|b| b.strip_suffix('.'))
            .filter(|b| !b.is_empty())
    }
}

impl S3Host for Domain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let h = strip_port(host);
        let bucket = h
            .strip_suffix(self.domain.as_str())
            .and_then(|b| b.strip_suffix('.'))
            .filter(|b| !b.is_empty());
        Ok(match bucket {
            Some(b) => VirtualHost::new(self.domain.as_str()).with_bucket(b),
            None => VirtualHost::new(h),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_subdomains_only() -> S3Result<()> {
        let d = Domain::new("s3.example.com").expect("domain");
        assert_eq!(
            d.parse_host_header("bkt.s3.example.com:9000")?.bucket(),
            Some("bkt")
        );
        assert_eq!(
            d.parse_host_header("bkt.s3.example.com")?.bucket(),
            Some("bkt")
        );
        assert_eq!(d.parse_host_header("s3.example.com:9000")?.bucket(), None);
        assert_eq!(d.parse_host_header("127.0.0.1:9000")?.bucket(), None);
        assert_eq!(d.parse_host_header("other.org")?.bucket(), None);
        assert!(Domain::new("bad domain").is_none());
        Ok(())
    }
}
