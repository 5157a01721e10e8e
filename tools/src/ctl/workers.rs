//! `scrub` and `drill`: running and watching the background workers.

use super::*;

impl Ctx {
    pub(super) fn scrub(&self, cmd: ScrubCommand) -> anyhow::Result<()> {
        match cmd {
            ScrubCommand::Run { wait: false } => {
                let r = self.client.post("/v1/scrub/run", None)?;
                self.outcome(
                    &r,
                    "scrub pass started (after the one running, if any); \
                     follow it with: stelectl scrub status",
                )
            }
            ScrubCommand::Run { wait: true } => {
                let r = self.client.post_waiting("/v1/scrub/run?wait=true", None)?;
                self.show(&r, |v| {
                    out!("scrub pass done:");
                    scrub_report(v)
                })
            }
            ScrubCommand::Status => {
                let r = self.client.get("/v1/scrub")?;
                self.show(&r, scrub_status)
            }
        }
    }

    pub(super) fn drill(&self, cmd: DrillCommand) -> anyhow::Result<()> {
        match cmd {
            DrillCommand::Run => {
                let r = self.client.post_waiting("/v1/drill/run", None)?;
                self.show(&r, |v| {
                    out!("restore drill done:");
                    drill_report(v)
                })?;
                let failed = r.json()?.get("failed").and_then(Value::as_u64);
                match failed.unwrap_or(0) {
                    0 => Ok(()),
                    1 => bail!("restore drill: 1 version did not read back whole"),
                    n => bail!("restore drill: {n} versions did not read back whole"),
                }
            }
            DrillCommand::Status => {
                let r = self.client.get("/v1/drill")?;
                self.show(&r, |v| {
                    let n = |k: &str| v.get(k).map(text).unwrap_or_else(|| "-".into());
                    let last = v.get("last").filter(|l| !l.is_null());
                    rows(&[
                        ("drills", n("drills")),
                        ("sample size", n("sample_size")),
                        (
                            "interval",
                            v.get("interval_secs")
                                .and_then(Value::as_u64)
                                .map(|s| format!("every {}", secs_text(s)))
                                .unwrap_or_else(|| "-".into()),
                        ),
                        (
                            "last drill",
                            match last {
                                Some(l) => {
                                    let c = |k: &str| l.get(k).map(text).unwrap_or_default();
                                    format!(
                                        "finished {}: {} passed, {} failed",
                                        l.get("finished").map(time).unwrap_or_default(),
                                        c("passed"),
                                        c("failed")
                                    )
                                }
                                None => "never".into(),
                            },
                        ),
                    ]);
                    if let Some(l) = last {
                        failures_table(l);
                    }
                    Ok(())
                })
            }
        }
    }
}
