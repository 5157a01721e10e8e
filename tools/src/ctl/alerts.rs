//! `alerts`: sinks, test alerts and the delivery queue.

use super::*;

impl Ctx {
    pub(super) fn alerts(&self, cmd: AlertsCommand) -> anyhow::Result<()> {
        match cmd {
            AlertsCommand::Test => {
                let r = self.client.post("/v1/alerts/test")?;
                // Its 202 means "accepted", not a pending approval: no `show`.
                if self.json {
                    print_raw(&r);
                } else {
                    out!(
                        "test alert raised: logged and queued for every sink \
                         (see stelectl alerts queue)"
                    );
                }
                Ok(())
            }
            AlertsCommand::Sink(SinkCommand::Set { name, url }) => {
                let r = self.client.put(&sink_path(&name), &SetSink { url })?;
                self.show(&r, |v: &Sink| {
                    let url = &v.url;
                    out!("alert sink {name} set: alerts are POSTed to {url}");
                    Ok(())
                })
            }
            AlertsCommand::Sink(SinkCommand::List) => {
                let r = self.client.get("/v1/alerts/sinks")?;
                self.show(&r, |list: &Vec<Sink>| {
                    if list.is_empty() {
                        out!("no alert sinks: alerts only reach the log");
                        return Ok(());
                    }
                    table(
                        &["SINK", "CREATED", "URL"],
                        list.iter()
                            .map(|s| vec![s.name.clone(), time(s.created), s.url.clone()])
                            .collect(),
                    );
                    Ok(())
                })
            }
            AlertsCommand::Sink(SinkCommand::Remove { name }) => {
                let r = self.client.delete(&sink_path(&name))?;
                self.outcome(&r, &format!("alert sink {name} removed"))
            }
            AlertsCommand::Queue => {
                let r = self.client.get("/v1/alerts/queue")?;
                self.show(&r, |list: &Vec<QueuedAlert>| {
                    if list.is_empty() {
                        out!("no alerts waiting for delivery");
                        return Ok(());
                    }
                    table(
                        &[
                            "ID",
                            "SINK",
                            "KIND",
                            "RAISED",
                            "ATTEMPTS",
                            "NEXT ATTEMPT",
                            "LAST ERROR",
                        ],
                        list.iter()
                            .map(|a| {
                                // The payload is the JSON the sink receives.
                                let kind = serde_json::from_str::<PayloadKind>(&a.payload)
                                    .map_or_else(|_| "-".into(), |p| p.kind);
                                vec![
                                    a.id.clone(),
                                    a.sink.clone(),
                                    kind,
                                    time(a.raised),
                                    a.attempts.to_string(),
                                    time(a.next_attempt),
                                    opt_text(a.last_error.as_deref()),
                                ]
                            })
                            .collect(),
                    );
                    Ok(())
                })
            }
        }
    }
}
