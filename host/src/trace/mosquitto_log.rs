//! A trace read from mosquitto's log (`log_type all`, or `debug`): what copper
//! meant its broker's log for. Each `Received PUBLISH from <client> (…, '<topic>', …)`
//! counts a publication, each `Received SUBSCRIBE from <client>` the filters on
//! the lines after it. A log holds no payloads, so the resources a request names
//! are not in it; those its services produce (`<service>/resources/<name>`) are.

use super::{ClientRecord, Recorded};

/// Reads the trace out of a mosquitto log's text; lines it does not know are passed over.
pub fn read(text: &str) -> Recorded {
    let mut recorded = Recorded::default();
    // The client whose SUBSCRIBE the next tab-indented lines list.
    let mut subscribing: Option<String> = None;
    for line in text.lines() {
        let (at_ms, message) = split_time(line);
        if let Some(filter) = message.strip_prefix('\t') {
            if let Some(client) = &subscribing {
                let filter = filter
                    .rsplit_once(" (QoS")
                    .map_or(filter, |(filter, _)| filter);
                let filter = super::unshared(filter);
                let client = recorded.client_mut(client);
                ClientRecord::note(&mut client.subscribes, filter, at_ms);
            }
            continue;
        }
        // The lines between a SUBSCRIBE's filters (`<client> <qos> <filter>`)
        // keep it open; the next packet ends it.
        if ["Received ", "Sending ", "New ", "Client "]
            .iter()
            .any(|p| message.starts_with(p))
        {
            subscribing = None;
        }
        if let Some(client) = message.strip_prefix("Received SUBSCRIBE from ") {
            subscribing = Some(client.trim().to_string());
        } else if let Some(rest) = message.strip_prefix("Received PUBLISH from ")
            && let Some((client, topic)) = publish_of(rest)
        {
            let client = recorded.client_mut(client);
            ClientRecord::note(&mut client.publishes, topic, at_ms);
        }
    }
    recorded.clients.sort_by(|a, b| a.client.cmp(&b.client));
    recorded
}

/// `<client> (d0, q1, r0, m1, '<topic>', ... (16 bytes))` → client and topic.
fn publish_of(rest: &str) -> Option<(&str, &str)> {
    let (client, flags) = rest.split_once(" (d")?;
    let start = flags.find('\'')? + 1;
    let end = flags.rfind("', ")?;
    (end >= start).then(|| (client, &flags[start..end]))
}

/// A line's leading `<unix seconds>: ` as milliseconds (0 when it has none), and the rest.
fn split_time(line: &str) -> (u64, &str) {
    match line.split_once(": ") {
        Some((time, rest)) if !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit()) => {
            (time.parse::<u64>().map_or(0, |s| s * 1000), rest)
        }
        _ => (0, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "1796321093: mosquitto version 2.0.11 running
1796321093: New client connected from 127.0.0.1:53582 as subber (p2, c1, k60).
1796321093: Received SUBSCRIBE from subber
1796321093: \ta/b/finish (QoS 0)
1796321093: subber 0 a/b/finish
1796321093: \t$share/g/x/y (QoS 1)
1796321093: subber 1 $share/g/x/y
1796321093: Sending SUBACK to subber
1796321094: Received PUBLISH from pubber (d0, q1, r0, m1, 'a/b/finish', ... (16 bytes))
1796321095: Received PUBLISH from pubber (d0, q0, r0, m0, 'a/b/finish', ... (2 bytes))
1796321095: Sending PUBLISH to subber (d0, q0, r0, m0, 'a/b/finish', ... (16 bytes))
";

    #[test]
    fn publications_and_subscriptions_are_read_with_their_times() {
        let recorded = read(LOG);
        assert_eq!(recorded.clients.len(), 2);
        let pubber = &recorded.clients[0];
        assert_eq!(pubber.client, "pubber");
        assert_eq!(pubber.publishes.len(), 1);
        assert_eq!(pubber.publishes[0].topic, "a/b/finish");
        assert_eq!(pubber.publishes[0].count, 2);
        assert_eq!(pubber.publishes[0].first_ms, 1_796_321_094_000);
        assert_eq!(pubber.publishes[0].last_ms, 1_796_321_095_000);
        let subber = &recorded.clients[1];
        let filters: Vec<&str> = subber.subscribes.iter().map(|s| s.topic.as_str()).collect();
        assert_eq!(filters, ["a/b/finish", "x/y"]);
        assert!(
            subber.publishes.is_empty(),
            "deliveries are not publications"
        );
    }

    #[test]
    fn anything_else_is_passed_over() {
        assert_eq!(
            read("garbage\n\n: x\n12: Received PUBLISH from c (d0 no topic"),
            Recorded::default()
        );
    }
}
