//! Test hosts with addresses of their own: network namespaces made by the test,
//! each joined by a veth pair to a bridge of the test's; the broker listens on the
//! bridge's address. Cutting a host off is setting its end of the pair down.

use std::process::Command;

/// Runs `ip` with `args`; panics with what it said when it fails.
fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` runs (./test.sh installs Debian's iproute2)");
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A bridge with `hosts` network namespaces on it, removed when dropped.
pub struct Network {
    tag: String,
    subnet: u8,
    hosts: usize,
}

impl Network {
    /// Makes the bridge (10.77.N.1/24, N picked free) and `hosts` namespaces
    /// (10.77.N.11, .12, ...). Needs root (CAP_NET_ADMIN): fails loudly otherwise.
    pub fn new(hosts: usize) -> Network {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..5].to_string();
        let used = String::from_utf8(
            Command::new("ip")
                .args(["-4", "-o", "addr"])
                .output()
                .expect("`ip` runs (./test.sh installs Debian's iproute2)")
                .stdout,
        )
        .unwrap();
        let subnet = (0..=255u8)
            .map(|n| n.wrapping_add(tag.as_bytes()[0]))
            .find(|n| !used.contains(&format!("10.77.{n}.")))
            .expect("a free 10.77.N.0/24");
        let network = Network {
            tag,
            subnet,
            hosts: 0,
        };
        let bridge = network.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        let mut network = network;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", network.broker_ip()),
            "dev",
            &bridge,
        ]);
        ip(&["link", "set", &bridge, "up"]);
        for index in 0..hosts {
            let namespace = network.namespace(index);
            let veth = network.veth(index);
            ip(&["netns", "add", &namespace]);
            network.hosts += 1;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
            ]);
            ip(&["link", "set", &veth, "master", &bridge, "up"]);
            let address = format!("{}/24", network.host_ip(index));
            ip(&["-n", &namespace, "addr", "add", &address, "dev", "eth0"]);
            ip(&["-n", &namespace, "link", "set", "eth0", "up"]);
            ip(&["-n", &namespace, "link", "set", "lo", "up"]);
        }
        network
    }

    fn bridge(&self) -> String {
        format!("cwb{}", self.tag)
    }

    fn veth(&self, index: usize) -> String {
        format!("cw{}v{index}", self.tag)
    }

    /// The namespace of host `index`.
    pub fn namespace(&self, index: usize) -> String {
        format!("cw{}h{index}", self.tag)
    }

    /// The bridge's address, where the broker listens.
    pub fn broker_ip(&self) -> String {
        format!("10.77.{}.1", self.subnet)
    }

    /// Host `index`'s address.
    pub fn host_ip(&self, index: usize) -> String {
        format!("10.77.{}.{}", self.subnet, 11 + index)
    }

    /// `command` run inside host `index`'s namespace.
    pub fn command_in(&self, index: usize, program: &std::path::Path) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace(index)])
            .arg(program);
        command
    }

    /// Cuts host `index` off the network (its link down; the host runs on).
    pub fn cut(&self, index: usize) {
        ip(&["link", "set", &self.veth(index), "down"]);
    }

    /// Puts host `index` back on the network.
    pub fn restore(&self, index: usize) {
        ip(&["link", "set", &self.veth(index), "up"]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for index in 0..self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.namespace(index)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .status();
    }
}
