//! `scrub` and `drill`: running and watching the background workers.

use super::*;

impl Ctx {
    pub(super) fn scrub(&self, cmd: ScrubCommand) -> anyhow::Result<()> {
        match cmd {
            ScrubCommand::Run { wait: false } => {
                let r = self.client.post("/v1/scrub/run")?;
                self.outcome(
                    &r,
                    "scrub pass started (after the one running, if any); \
                     follow it with: stelectl scrub status",
                )
            }
            ScrubCommand::Run { wait: true } => {
                let r = self.client.post_waiting("/v1/scrub/run?wait=true")?;
                self.show(&r, |v: &Option<ScrubReport>| {
                    out!("scrub pass done:");
                    scrub_report(v.as_ref())
                })
            }
            ScrubCommand::Status => {
                let r = self.client.get("/v1/scrub")?;
                self.show(&r, |v: &ScrubStatus| scrub_status(v))
            }
        }
    }

    pub(super) fn drill(&self, cmd: DrillCommand) -> anyhow::Result<()> {
        match cmd {
            DrillCommand::Run => {
                let r = self.client.post_waiting("/v1/drill/run")?;
                self.show(&r, |v: &Option<DrillReport>| {
                    out!("restore drill done:");
                    drill_report(v.as_ref())
                })?;
                let report = r.json::<Option<DrillReport>>()?;
                match report.map_or(0, |d| d.failed) {
                    0 => Ok(()),
                    1 => bail!("restore drill: 1 version did not read back whole"),
                    n => bail!("restore drill: {n} versions did not read back whole"),
                }
            }
            DrillCommand::Status => {
                let r = self.client.get("/v1/drill")?;
                self.show(&r, |v: &DrillStatus| {
                    let last = v.last.as_ref();
                    rows(&[
                        ("drills", v.drills.to_string()),
                        ("sample size", v.sample_size.to_string()),
                        ("interval", format!("every {}", secs_text(v.interval_secs))),
                        (
                            "last drill",
                            match last {
                                Some(l) => format!(
                                    "finished {}: {} passed, {} failed",
                                    opt_time(l.finished),
                                    l.passed,
                                    l.failed
                                ),
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
