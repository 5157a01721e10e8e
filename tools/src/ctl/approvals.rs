//! `approvals`: the two-person rule's pending operations.

use super::*;

impl Ctx {
    pub(super) fn approvals(&self, cmd: ApprovalsCommand) -> anyhow::Result<()> {
        match cmd {
            ApprovalsCommand::List => {
                let r = self.client.get("/v1/approvals")?;
                self.show(&r, |v| {
                    let list = v.as_array().context("expected a list of approvals")?;
                    if list.is_empty() {
                        out!("no pending approvals");
                        return Ok(());
                    }
                    let f = |a: &Value, k: &str| a.get(k).map(text).unwrap_or_default();
                    let t = |a: &Value, k: &str| a.get(k).map(time).unwrap_or_default();
                    table(
                        &["ID", "REQUESTED BY", "CREATED", "EXPIRES", "OPERATION"],
                        list.iter()
                            .map(|a| {
                                vec![
                                    f(a, "id"),
                                    f(a, "requested_by"),
                                    t(a, "created"),
                                    t(a, "expires"),
                                    f(a, "operation"),
                                ]
                            })
                            .collect(),
                    );
                    Ok(())
                })
            }
            ApprovalsCommand::Approve { id } => {
                let r = self
                    .client
                    .post(&format!("/v1/approvals/{}/approve", segment(&id)), None)?;
                self.show(&r, |v| {
                    let op = v.get("operation").map(text).unwrap_or_default();
                    out!("approved {id}; carried out: {op}");
                    Ok(())
                })
            }
            ApprovalsCommand::Deny { id } => {
                let r = self
                    .client
                    .post(&format!("/v1/approvals/{}/deny", segment(&id)), None)?;
                self.show(&r, |_| {
                    out!("denied {id}");
                    Ok(())
                })
            }
        }
    }
}
