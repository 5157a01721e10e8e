//! `alerts`: sinks, test alerts and the delivery queue.

use super::*;

impl Ctx {
    pub(super) fn alerts(&self, cmd: AlertsCommand) -> anyhow::Result<()> {
        match cmd {
            AlertsCommand::Test => {
                let r = self.client.post("/v1/alerts/test", None)?;
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
                let r = self.client.put(&sink_path(&name), &json!({ "url": url }))?;
                self.show(&r, |v| {
                    let url = v.get("url").map(text).unwrap_or(url);
                    out!("alert sink {name} set: alerts are POSTed to {url}");
                    Ok(())
                })
            }
            AlertsCommand::Sink(SinkCommand::List) => {
                let r = self.client.get("/v1/alerts/sinks")?;
                self.show(&r, |v| {
                    let list = v.as_array().context("expected a list of sinks")?;
                    if list.is_empty() {
                        out!("no alert sinks: alerts only reach the log");
                        return Ok(());
                    }
                    table(
                        &["SINK", "CREATED", "URL"],
                        list.iter()
                            .map(|s| {
                                vec![
                                    s.get("name").map(text).unwrap_or_default(),
                                    s.get("created").map(time).unwrap_or_default(),
                                    s.get("url").map(text).unwrap_or_default(),
                                ]
                            })
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
                self.show(&r, |v| {
                    let list = v.as_array().context("expected a list of queued alerts")?;
                    if list.is_empty() {
                        out!("no alerts waiting for delivery");
                        return Ok(());
                    }
                    let f = |a: &Value, k: &str| a.get(k).map(text).unwrap_or_default();
                    let t = |a: &Value, k: &str| a.get(k).map(time).unwrap_or_default();
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
                                let kind = a
                                    .get("payload")
                                    .and_then(Value::as_str)
                                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                                    .and_then(|p| p.get("kind").map(text))
                                    .unwrap_or_else(|| "-".into());
                                vec![
                                    f(a, "id"),
                                    f(a, "sink"),
                                    kind,
                                    t(a, "raised"),
                                    f(a, "attempts"),
                                    t(a, "next_attempt"),
                                    f(a, "last_error"),
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
