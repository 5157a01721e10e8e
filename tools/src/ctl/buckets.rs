//! `bucket` and `policy`: buckets, default retention, retention policies, expectations.

use super::*;

impl Ctx {
    pub(super) fn bucket(&self, cmd: BucketCommand) -> anyhow::Result<()> {
        match cmd {
            BucketCommand::Create {
                name,
                lock,
                retention,
                mode,
            } => {
                let mode = retention.map(|_| mode.unwrap_or(Mode::Compliance));
                let body = NewBucket {
                    name: name.clone(),
                    lock: lock || retention.is_some(),
                    retention_mode: mode.map(|m| m.as_str().to_owned()),
                    retention_days: retention,
                };
                let r = self.client.post_json("/v1/buckets", &body)?;
                self.show(&r, |_: &IgnoredAny| {
                    match (retention, mode) {
                        (Some(days), Some(mode)) => {
                            let plural = if days == 1 { "" } else { "s" };
                            out!(
                                "bucket {name} created: Object Lock on, \
                                 default retention {} {days} day{plural}",
                                mode.as_str()
                            )
                        }
                        _ if lock => out!("bucket {name} created: Object Lock on"),
                        _ => out!("bucket {name} created"),
                    }
                    Ok(())
                })
            }
            BucketCommand::List => {
                let r = self.client.get("/v1/buckets")?;
                self.show(&r, |v: &Vec<BucketSummary>| {
                    if v.is_empty() {
                        out!("no buckets");
                        return Ok(());
                    }
                    let lines = v
                        .iter()
                        .map(|b| {
                            vec![
                                b.name.clone(),
                                b.versioning.clone(),
                                if b.object_lock { "on" } else { "off" }.into(),
                                b.objects.to_string(),
                                bytes_text(b.used_bytes),
                                bytes_text(b.upload_bytes),
                                b.quota_bytes.map_or_else(|| "-".into(), bytes_text),
                                b.quota_bytes.filter(|q| *q > 0).map_or_else(
                                    || "-".into(),
                                    |q| {
                                        let total = b.used_bytes.saturating_add(b.upload_bytes);
                                        format!("{:.0}%", total as f64 * 100.0 / q as f64)
                                    },
                                ),
                            ]
                        })
                        .collect();
                    table(
                        &[
                            "BUCKET",
                            "VERSIONING",
                            "LOCK",
                            "VERSIONS",
                            "USED",
                            "UPLOADS",
                            "QUOTA",
                            "USE",
                        ],
                        lines,
                    );
                    Ok(())
                })
            }
            BucketCommand::Quota { bucket, set, clear } => {
                let path = format!("/v1/buckets/{}/quota", segment(&bucket));
                let r = if set.is_some() || clear {
                    self.client.put(&path, &Quota { quota_bytes: set })?
                } else {
                    self.client.get(&path)?
                };
                self.show(&r, |v: &BucketSummary| {
                    rows(&[
                        ("bucket", v.name.clone()),
                        (
                            "quota",
                            v.quota_bytes
                                .map_or_else(|| "none".into(), exact_bytes_text),
                        ),
                        ("used", exact_bytes_text(v.used_bytes)),
                        ("versions", v.objects.to_string()),
                        ("uploads in progress", exact_bytes_text(v.upload_bytes)),
                    ]);
                    Ok(())
                })
            }
            BucketCommand::Geo {
                bucket,
                profile,
                default_profile,
                site_down,
            } => {
                let path = format!("/v1/buckets/{}/geo", segment(&bucket));
                let r = if profile.is_some() || default_profile || site_down.is_some() {
                    self.client.put(
                        &path,
                        &GeoChange {
                            profile,
                            default_profile,
                            site_down_writes: site_down,
                        },
                    )?
                } else {
                    self.client.get(&path)?
                };
                self.show(&r, |g: &Geo| {
                    rows(&[
                        ("bucket", g.bucket.clone()),
                        (
                            "profile",
                            match &g.profile {
                                Some(p) => p.clone(),
                                None => format!("{} (the node's)", g.effective_profile),
                            },
                        ),
                        ("while a site is down", g.site_down_writes.clone()),
                    ]);
                    Ok(())
                })
            }
            BucketCommand::Expect {
                bucket,
                every,
                none: _,
            } => {
                let path = format!("/v1/buckets/{}/expect", segment(&bucket));
                let r = self.client.put(&path, &Expectation { every_secs: every })?;
                let what = match every {
                    Some(secs) => {
                        let every = match secs_text(secs) {
                            t if t.ends_with('s') => t,
                            t => format!("{t} ({secs}s)"),
                        };
                        format!(
                            "bucket {bucket}: a new version expected at least every {every}; \
                             an overdue backup raises an alert"
                        )
                    }
                    None => format!("bucket {bucket}: no backup freshness expectation"),
                };
                self.outcome(&r, &what)
            }
        }
    }

    pub(super) fn policy(&self, cmd: PolicyCommand) -> anyhow::Result<()> {
        match cmd {
            PolicyCommand::Set {
                bucket,
                min_days,
                max_days,
                mut modes,
                below_min,
            } => {
                if let (Some(min), Some(max)) = (min_days, max_days)
                    && min > max
                {
                    bail!("--min-days {min} is above --max-days {max}");
                }
                let mut seen = Vec::new();
                modes.retain(|m| {
                    let first = !seen.contains(m);
                    seen.push(*m);
                    first
                });
                let body = Policy {
                    min_days,
                    max_days,
                    modes: modes.iter().map(|m| m.as_str().to_owned()).collect(),
                    below_min: match below_min {
                        BelowMin::Refuse => "refuse",
                        BelowMin::Raise => "raise",
                    }
                    .to_owned(),
                };
                let r = self.client.put(&policy_path(&bucket), &Some(body))?;
                self.outcome(&r, &format!("retention policy of {bucket} set"))
            }
            PolicyCommand::Show { bucket } => {
                let r = self.client.get(&policy_path(&bucket))?;
                self.show(&r, |v: &Option<Policy>| {
                    let Some(v) = v else {
                        out!("bucket {bucket} has no retention policy");
                        return Ok(());
                    };
                    let days = |d: Option<u32>| d.map_or_else(|| "-".into(), |n| n.to_string());
                    rows(&[
                        ("bucket", bucket.clone()),
                        ("min days", days(v.min_days)),
                        ("max days", days(v.max_days)),
                        ("modes", v.modes.join(", ")),
                        ("below minimum", v.below_min.clone()),
                    ]);
                    Ok(())
                })
            }
            PolicyCommand::Clear { bucket } => {
                let r = self.client.put(&policy_path(&bucket), &None::<Policy>)?;
                self.outcome(&r, &format!("retention policy of {bucket} removed"))
            }
        }
    }
}
