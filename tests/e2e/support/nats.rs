//! A clustered broker a user would run: nats-server from Debian's package, three
//! nodes on loopback, each speaking MQTT (which needs JetStream and a server name).

use super::{Process, free_port, wait_for_port};
use std::path::Path;
use std::process::Command;

/// How long an MQTT message unacknowledged waits before nats-server sends it again.
pub const ACK_WAIT: &str = "5s";

/// One node of the cluster.
pub struct NatsNode {
    process: Option<Process>,
    /// Its MQTT port.
    pub mqtt: u16,
    conf: std::path::PathBuf,
}

/// Three nats-server nodes clustered on loopback.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
}

impl NatsCluster {
    /// Starts three nodes with their files in `dir`, and waits for their MQTT ports.
    pub fn start(dir: &Path) -> NatsCluster {
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nats-server is installed (./test.sh installs Debian's package)");
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster, _)| format!("\"nats-route://127.0.0.1:{cluster}\""))
            .collect();
        let mut nodes = Vec::new();
        for (index, (client, cluster, mqtt)) in ports.iter().enumerate() {
            let store = dir.join(format!("n{index}"));
            std::fs::create_dir_all(&store).unwrap();
            let conf = dir.join(format!("n{index}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{index}\nlisten: \"127.0.0.1:{client}\"\n\
                     jetstream {{ store_dir: \"{}\" }}\n\
                     mqtt {{ listen: \"127.0.0.1:{mqtt}\", ack_wait: \"{ACK_WAIT}\", stream_replicas: 3, consumer_replicas: 3 }}\n\
                     cluster {{ name: copper, listen: \"127.0.0.1:{cluster}\", routes: [{}] }}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )
            .unwrap();
            nodes.push(NatsNode {
                process: None,
                mqtt: *mqtt,
                conf,
            });
        }
        let mut cluster = NatsCluster { nodes };
        for index in 0..3 {
            cluster.start_node(index, binary);
        }
        for node in &cluster.nodes {
            wait_for_port(node.mqtt, "nats-server's MQTT");
        }
        cluster
    }

    fn start_node(&mut self, index: usize, binary: &str) {
        let node = &mut self.nodes[index];
        let log = node.conf.with_extension("log");
        let mut command = Command::new(binary);
        command.arg("-c").arg(&node.conf);
        node.process = Some(Process::spawn_logged(&mut command, "nats-server", &log));
    }

    /// The cluster's URL, its nodes listed from `first` on.
    pub fn url(&self, first: usize) -> String {
        let nodes: Vec<String> = (0..3)
            .map(|k| format!("127.0.0.1:{}", self.nodes[(first + k) % 3].mqtt))
            .collect();
        format!("mqtt://{}", nodes.join(","))
    }

    /// Kills node `index` (SIGKILL).
    pub fn kill(&mut self, index: usize) {
        if let Some(mut process) = self.nodes[index].process.take() {
            process.kill();
        }
    }
}
