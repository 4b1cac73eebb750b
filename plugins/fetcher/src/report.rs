//! Sizes and durations as text, in the shapes copper published.

use std::time::Duration;

/// `1 MB 200 KB`: the two largest non-zero units (1024-based), `0 B` for nothing.
pub fn size_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)];
    let mut rest = bytes;
    let parts: Vec<String> = UNITS
        .iter()
        .filter_map(|&(name, size)| {
            let count = rest / size;
            rest %= size;
            (count > 0).then(|| format!("{count} {name}"))
        })
        .take(2)
        .collect();
    if parts.is_empty() {
        "0 B".into()
    } else {
        parts.join(" ")
    }
}

/// `1 s 250 ms`: seconds and milliseconds (minutes too when there are some).
pub fn duration_text(elapsed: Duration) -> String {
    let ms = elapsed.as_millis();
    let (minutes, seconds, millis) = (ms / 60_000, (ms / 1000) % 60, ms % 1000);
    match (minutes, seconds) {
        (0, 0) => format!("{millis} ms"),
        (0, _) => format!("{seconds} s {millis} ms"),
        _ => format!("{minutes} min {seconds} s {millis} ms"),
    }
}

/// Python's `str(timedelta)`: `0:00:01.250000` (no fraction when it is zero).
pub fn timedelta_text(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let micros = elapsed.subsec_micros();
    if micros == 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{h}:{m:02}:{s:02}.{micros:06}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size_text(0), "0 B");
        assert_eq!(size_text(512), "512 B");
        assert_eq!(size_text((1 << 20) + 200 * 1024 + 7), "1 MB 200 KB");
        assert_eq!(size_text(3 << 30), "3 GB");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_text(Duration::from_millis(1250)), "1 s 250 ms");
        assert_eq!(duration_text(Duration::from_millis(42)), "42 ms");
        assert_eq!(
            duration_text(Duration::from_millis(61_005)),
            "1 min 1 s 5 ms"
        );
        assert_eq!(
            timedelta_text(Duration::from_millis(1250)),
            "0:00:01.250000"
        );
        assert_eq!(timedelta_text(Duration::from_secs(3723)), "1:02:03");
    }
}
