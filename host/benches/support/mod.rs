//! What the benches that start processes share: a child killed when dropped,
//! a free loopback port, a mosquitto, a process's memory and a command's time.
// Each bench uses what it needs of these.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// Waits (at most 20 s) until something listens on loopback `port`.
pub fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A mosquitto on loopback `port`, its configuration given `extra` lines; `None`
/// when mosquitto is not installed (./test.sh installs it).
pub fn mosquitto(dir: &Path, port: u16, extra: &str) -> Option<Running> {
    let conf = dir.join(format!("mosquitto-{port}.conf"));
    let text = format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}");
    std::fs::write(&conf, text).unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let running = Running(child);
    wait_port(port);
    Some(running)
}

/// Runs `command` to its end: its time and its peak resident memory (MB).
// wait4 reaps the child (std's wait has no rusage), so clippy's check of `wait` is moot.
#[allow(clippy::zombie_processes)]
pub fn measure(command: &mut Command) -> (Duration, f64) {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is a plain C struct, all zeroes a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the child is ours and not yet waited for; the pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    assert_eq!(waited, pid, "wait4");
    let status = std::process::ExitStatus::from_raw(status);
    assert!(status.success(), "{command:?}: {status}");
    (took, usage.ru_maxrss as f64 / 1024.0)
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
