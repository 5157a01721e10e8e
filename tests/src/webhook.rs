//! A webhook receiver for alert tests: keeps every JSON body POSTed to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A webhook receiver: keeps every JSON body POSTed to it.
#[derive(Clone, Default)]
pub struct Receiver {
    got: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    pub fn serve(listener: TcpListener) -> Receiver {
        let r = Receiver::default();
        let got = r.got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(v) = serde_json::from_slice(&body)
                {
                    got.lock().expect("lock").push(v);
                }
                let mut s = reader.into_inner();
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        r
    }

    pub fn start() -> (Receiver, String) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", l.local_addr().expect("addr"));
        (Receiver::serve(l), url)
    }

    pub fn of_kind(&self, kind: &str) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|v| v["kind"] == kind)
            .cloned()
            .collect()
    }

    /// Waits until `n` alerts of `kind` arrived.
    pub fn wait_for(&self, kind: &str, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = self.of_kind(kind);
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "only {} {kind} alerts arrived",
                found.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
