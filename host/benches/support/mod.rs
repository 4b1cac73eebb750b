//! What the benches that start processes share: a child killed when dropped,
//! a free loopback port, a process's memory.
// Each bench uses what it needs of these.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::Child;

/// A child process killed (and waited for) when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// The resident memory of process `pid`, in MB.
pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// The time of each of `n` sequential `testkit/echo` requests on `bus`, through
/// the runner's `request` (as a workflow's step makes them).
pub async fn echo_samples(bus: &copper_wasm::bus::Bus, n: usize) -> Vec<std::time::Duration> {
    let mut fields = copper_wasm::protocol::Object::new();
    fields.insert("action".into(), "testkit/echo".into());
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let finish = copper_wasm::runner::request(
            bus,
            "testkit/echo",
            &fields,
            Some(std::time::Duration::from_secs(10)),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(finish.status, copper_wasm::protocol::Status::Success);
        samples.push(t.elapsed());
    }
    samples
}
