//! The real `stele-server` binary: starts on the embedded default, refuses invalid
//! configurations at start with a clear message.

use stele_tests::{Server, server_refuses};

#[test]
fn starts_on_the_embedded_default_and_reports_disks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&["--data", data.to_str().expect("path")], dir.path());
    for i in 0..6 {
        assert!(
            data.join("disks")
                .join(format!("d{i}"))
                .join(".stele-disk")
                .exists()
        );
    }
    assert!(data.join("meta").exists());
    let body = admin_disks(&server);
    assert_eq!(body.matches("\"online\"").count(), 6, "{body}");
    server.kill();
}

#[test]
fn refuses_invalid_combinations_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |n: &str| dir.path().join(n).to_str().expect("path").to_owned();
    let data = d("data");

    let err = server_refuses(&["--data", &data, "--ec", "4+3"]);
    assert!(
        err.contains("needs at least 7 disks; 6 configured"),
        "{err}"
    );

    let err = server_refuses(&["--data", &data, "--ec", "0+2"]);
    assert!(err.contains("at least one data shard"), "{err}");

    let err = server_refuses(&["--data", &data, "--ec", "four"]);
    assert!(err.contains("K+M"), "{err}");

    std::fs::write(dir.path().join("afile"), b"x").expect("write");
    let (a, b, f) = (d("a"), d("b"), d("afile"));
    let err = server_refuses(&[
        "--data", &data, "--ec", "2+1", "--disk", &a, "--disk", &b, "--disk", &f,
    ]);
    assert!(err.contains("is a file"), "{err}");

    let err = server_refuses(&[
        "--data", &data, "--ec", "2+1", "--disk", &a, "--disk", &b, "--disk", &a,
    ]);
    assert!(err.contains("same directory"), "{err}");

    let err = server_refuses(&["--data", &data, "--ec", "2+1", "--disk", &a, "--disk", &b]);
    assert!(
        err.contains("needs at least 3 disks; 2 configured"),
        "{err}"
    );
}

#[test]
fn reads_a_config_file_and_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("stele.toml");
    let disks: String = (0..3)
        .map(|i| format!("[[disk]]\npath = \"{}/disk{i}\"\n", dir.path().display()))
        .collect();
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}/data\"\nec = \"2+1\"\n{disks}",
            dir.path().display()
        ),
    )
    .expect("write config");
    let server = Server::start(&["--config", cfg.to_str().expect("path")], dir.path());
    let body = admin_disks(&server);
    assert_eq!(body.matches("\"online\"").count(), 3, "{body}");
    server.kill();
    // A flag overrides the file: 2+2 needs 4 disks, the file has 3.
    let err = server_refuses(&["--config", cfg.to_str().expect("path"), "--ec", "2+2"]);
    assert!(
        err.contains("needs at least 4 disks; 3 configured"),
        "{err}"
    );
}

/// The admin API's disk list (JSON), which needs the admin credential.
fn admin_disks(server: &stele_tests::Server) -> String {
    let (status, body) = server.admin("GET", "/v1/disks", None);
    assert_eq!(status, 200, "{body}");
    // Without the credential: 401.
    let (status, _) = server.admin_as("nobody", "wrong", "GET", "/v1/disks", None);
    assert_eq!(status, 401);
    body
}

/// Two nodes whose data folders share a parent share the default key folder. A first
/// start that would generate an admin credential where another node's is kept is
/// refused before it makes any user; with its own key folder the same data folder then
/// starts and shows its first credentials (none were made by the refused start).
#[test]
fn a_first_start_refuses_a_key_folder_holding_another_nodes_first_admin() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path().join("stele-keys");
    std::fs::create_dir_all(&shared).expect("key folder");
    std::fs::write(
        shared.join("first-admin"),
        "STELE_ADMIN_KEY=another\nSTELE_ADMIN_SECRET=node\n",
    )
    .expect("first-admin");
    let data = dir.path().join("b");
    let err = server_refuses(&["--data", data.to_str().expect("path")]);
    assert!(
        err.contains("already keeps a first admin credential (first-admin) that"),
        "{err}"
    );
    let own = dir.path().join("b-keys");
    let mut child = Command::new(stele_tests::workspace_bin("stele-server"))
        .args(["--data", data.to_str().expect("path")])
        .args(["--key-dir", own.to_str().expect("path")])
        .args(["--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env_remove("STELE_ADMIN_KEY")
        .env_remove("STELE_ADMIN_SECRET")
        .env_remove("STELE_ACCESS_KEY")
        .env_remove("STELE_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut printed = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("line");
        let ready = line.starts_with("stele-server ready ");
        printed.push(line);
        if ready {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = printed.join("\n");
    assert!(
        text.contains("created the first admin credential")
            && text.contains("created the first S3 credential"),
        "{text}"
    );
    assert!(own.join("first-admin").exists());
}
