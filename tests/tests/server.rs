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
    let body = http_get(&format!("{}/v1/disks", server.admin_url));
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
    let body = http_get(&format!("{}/v1/disks", server.admin_url));
    assert_eq!(body.matches("\"online\"").count(), 3, "{body}");
    server.kill();
    // A flag overrides the file: 2+2 needs 4 disks, the file has 3.
    let err = server_refuses(&["--config", cfg.to_str().expect("path"), "--ec", "2+2"]);
    assert!(
        err.contains("needs at least 4 disks; 3 configured"),
        "{err}"
    );
}

/// A minimal HTTP/1.1 GET over a plain socket: the admin API's JSON.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}
