//! `user` and `key`: users, their grants, keys, rotation and revocation.

use super::*;

impl Ctx {
    pub(super) fn user(&self, cmd: UserCommand) -> anyhow::Result<()> {
        match cmd {
            UserCommand::Add { name, roles } => {
                let body = NewUser {
                    name: name.clone(),
                    grants: roles,
                };
                let r = self.client.post_json("/v1/users", &body)?;
                self.show(&r, |v: &User| {
                    out!("user {name} added:");
                    users_table(std::slice::from_ref(v));
                    // An administrator works through the admin API: its key is an
                    // admin-plane one.
                    if v.grants
                        .iter()
                        .any(|g| g.role == "admin" || g.role == "auditor")
                    {
                        out!(
                            "create a key with: stelectl key create {name} --admin \
                             (admin API), or without --admin for S3"
                        );
                    } else {
                        out!("create a key with: stelectl key create {name}");
                    }
                    Ok(())
                })
            }
            UserCommand::List => {
                let r = self.client.get("/v1/users")?;
                self.show(&r, |users: &Vec<User>| {
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
            .post(&format!("/v1/users/{}/{verb}", segment(name)))?;
        self.show(&r, |v: &User| {
            out!("user {name} {verb}d");
            users_table(std::slice::from_ref(v));
            Ok(())
        })
    }

    pub(super) fn key(&self, cmd: KeyCommand) -> anyhow::Result<()> {
        let mut rotated = None;
        let r = match cmd {
            KeyCommand::Create { user, admin } => {
                let plane = if admin { Plane::Admin } else { Plane::S3 };
                self.client.post_json(
                    &format!("/v1/users/{}/keys", segment(&user)),
                    &KeyRequest {
                        plane: Some(plane.as_str().to_owned()),
                    },
                )?
            }
            KeyCommand::Rotate { access_key } => {
                let r = self
                    .client
                    .post(&format!("/v1/keys/{}/rotate", segment(&access_key)))?;
                rotated = Some(access_key);
                r
            }
            KeyCommand::Revoke { access_key } => {
                let r = self
                    .client
                    .delete(&format!("/v1/keys/{}", segment(&access_key)))?;
                return self.show(&r, |_: &IgnoredAny| {
                    out!("key {access_key} revoked");
                    Ok(())
                });
            }
        };
        self.show(&r, |v: &NewKey| {
            rows(&[
                ("user", v.user.as_str()),
                ("plane", v.plane.as_str()),
                ("access key", v.access_key.as_str()),
                ("secret key", v.secret_key.as_str()),
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
