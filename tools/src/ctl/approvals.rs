//! `approvals`: the two-person rule's pending operations.

use super::*;

impl Ctx {
    pub(super) fn approvals(&self, cmd: ApprovalsCommand) -> anyhow::Result<()> {
        match cmd {
            ApprovalsCommand::List => {
                let r = self.client.get("/v1/approvals")?;
                self.show(&r, |list: &Vec<Approval>| {
                    if list.is_empty() {
                        out!("no pending approvals");
                        return Ok(());
                    }
                    let lines = list
                        .iter()
                        .map(|a| {
                            Ok(vec![
                                a.id.clone(),
                                a.requested_by.clone(),
                                time(a.created),
                                time(a.expires),
                                operation_text(&a.operation)?,
                            ])
                        })
                        .collect::<anyhow::Result<_>>()?;
                    table(
                        &["ID", "REQUESTED BY", "CREATED", "EXPIRES", "OPERATION"],
                        lines,
                    );
                    Ok(())
                })
            }
            ApprovalsCommand::Approve { id } => {
                let r = self
                    .client
                    .post(&format!("/v1/approvals/{}/approve", segment(&id)))?;
                self.show(&r, |v: &Approved| {
                    let op = operation_text(&v.operation)?;
                    out!("approved {id}; carried out: {op}");
                    Ok(())
                })
            }
            ApprovalsCommand::Deny { id } => {
                let r = self
                    .client
                    .post(&format!("/v1/approvals/{}/deny", segment(&id)))?;
                self.show(&r, |_: &IgnoredAny| {
                    out!("denied {id}");
                    Ok(())
                })
            }
        }
    }
}
