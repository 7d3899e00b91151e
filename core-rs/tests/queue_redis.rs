//! The call queue from Rust against a real redis-server (Debian's, which `make setup` installs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should stop the test

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dialer_core::contacts::import::{import_file, ImportOptions};
use dialer_core::queue::{CallQueue, Completed, Completion, OutcomePolicy};

struct Redis {
    child: Child,
    url: String,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("dialer-core-it-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; `make setup` installs it)");
        let url = format!("redis://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(c) = redis::Client::open(url.as_str()) {
                if let Ok(mut con) = c.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                        break;
                    }
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(10));
        }
        Redis { child, url, dir }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn load(r: &Redis, campaign: &str, n: u64) -> Vec<u64> {
    let path = r.dir.join(format!("{campaign}.txt"));
    let nums: Vec<u64> = (0..n).map(|i| 84_900_000_000 + i).collect();
    let text: String = nums.iter().map(|x| format!("+{x}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let rep = import_file(
        &r.url,
        &path,
        &ImportOptions::new(campaign, "VN"),
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(rep.accepted, n);
    nums
}

#[test]
fn threads_claim_and_complete_every_contact_exactly_once() {
    let r = Redis::start();
    let mut nums = load(&r, "it", 20_000);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = r.url.clone();
            std::thread::spawn(move || {
                let mut q = CallQueue::open(&url, "it", None, OutcomePolicy::default()).unwrap();
                let mut got = Vec::new();
                loop {
                    let claims = q.claim(0, 250, 1_000, 60_000, false).unwrap();
                    if claims.is_empty() {
                        return got;
                    }
                    let done: Vec<Completion> = claims
                        .iter()
                        .map(|c| Completion::new(c.number, c.token, "answered"))
                        .collect();
                    assert!(q
                        .complete(0, &done, 1_000)
                        .unwrap()
                        .iter()
                        .all(|d| *d == Completed::Final));
                    got.extend(claims.iter().map(|c| c.number));
                }
            })
        })
        .collect();
    let mut got: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    got.sort_unstable();
    nums.sort_unstable();
    assert_eq!(got, nums);
}

#[test]
fn a_stale_token_changes_nothing() {
    let r = Redis::start();
    load(&r, "st", 1);
    let mut q = CallQueue::open(&r.url, "st", None, OutcomePolicy::default()).unwrap();
    let c = q.claim(0, 1, 1_000, 60_000, false).unwrap().remove(0);
    let wrong = Completion::new(c.number, c.token + 1, "answered");
    assert_eq!(
        q.complete(0, &[wrong], 1_000).unwrap(),
        vec![Completed::Stale('C')]
    );
    let right = Completion::new(c.number, c.token, "no_answer");
    assert_eq!(
        q.complete(0, std::slice::from_ref(&right), 1_000).unwrap(),
        vec![Completed::Retry]
    );
    assert_eq!(
        q.complete(0, &[right], 1_000).unwrap(),
        vec![Completed::Stale('W')]
    );
}
