//! `user` and `key`: users, their grants, keys, rotation and revocation.

use super::*;

impl Ctx {
    pub(super) fn user(&self, cmd: UserCommand) -> anyhow::Result<()> {
        match cmd {
            UserCommand::Add { name, roles } => {
                let r = self
                    .client
                    .post("/v1/users", Some(&json!({ "name": name, "grants": roles })))?;
                self.show(&r, |v| {
                    out!("user {name} added:");
                    users_table(std::slice::from_ref(v));
                    out!("create a key with: stelectl key create {name}");
                    Ok(())
                })
            }
            UserCommand::List => {
                let r = self.client.get("/v1/users")?;
                self.show(&r, |v| {
                    let users = v.as_array().context("expected a list of users")?;
                    if users.is_empty() {
                        out!("no users");
                        return Ok(());
                    }
                    users_table(users);
                    keys_table(users);
                    Ok(())
                })
            }
            UserCommand::Disable { name } => self.toggle(&name, "disable"),
            UserCommand::Enable { name } => self.toggle(&name, "enable"),
            UserCommand::Delete { name } => {
                let r = self
                    .client
                    .delete(&format!("/v1/users/{}", segment(&name)))?;
                self.outcome(&r, &format!("user {name} deleted"))
            }
        }
    }

    pub(super) fn toggle(&self, name: &str, verb: &str) -> anyhow::Result<()> {
        let r = self
            .client
            .post(&format!("/v1/users/{}/{verb}", segment(name)), None)?;
        self.show(&r, |v| {
            out!("user {name} {verb}d");
            users_table(std::slice::from_ref(v));
            Ok(())
        })
    }

    pub(super) fn key(&self, cmd: KeyCommand) -> anyhow::Result<()> {
        let mut rotated = None;
        let r = match cmd {
            KeyCommand::Create { user, admin } => {
                let plane = if admin { "admin" } else { "s3" };
                self.client.post(
                    &format!("/v1/users/{}/keys", segment(&user)),
                    Some(&json!({ "plane": plane })),
                )?
            }
            KeyCommand::Rotate { access_key } => {
                let r = self
                    .client
                    .post(&format!("/v1/keys/{}/rotate", segment(&access_key)), None)?;
                rotated = Some(access_key);
                r
            }
            KeyCommand::Revoke { access_key } => {
                let r = self
                    .client
                    .delete(&format!("/v1/keys/{}", segment(&access_key)))?;
                return self.show(&r, |_| {
                    out!("key {access_key} revoked");
                    Ok(())
                });
            }
        };
        self.show(&r, |v| {
            let s = |k: &str| v.get(k).map(text).unwrap_or_default();
            rows(&[
                ("user", s("user")),
                ("plane", s("plane")),
                ("access key", s("access_key")),
                ("secret key", s("secret_key")),
            ]);
            out!("The secret key is shown only this once: store it now.");
            if let Some(old) = rotated {
                out!(
                    "The old key {old} keeps working until it is revoked:\n  \
                     stelectl key revoke {old}"
                );
            }
            Ok(())
        })
    }
}
