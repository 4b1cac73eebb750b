//! Durations as copper-wasm's files and messages write them: `30s`, `5m`, a number of seconds.

use serde_json::Value;
use std::time::Duration;

/// Reads a `timeout`: seconds as a number, or a duration text such as `90s` or `2m`.
///
/// ```
/// use copper_wasm::timeout;
/// use std::time::Duration;
/// assert_eq!(timeout::parse(&"2m".into()), Ok(Duration::from_secs(120)));
/// assert_eq!(timeout::parse(&1.5.into()), Ok(Duration::from_millis(1500)));
/// assert!(timeout::parse(&0.into()).is_err());
/// ```
pub fn parse(value: &Value) -> Result<Duration, String> {
    let duration = match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("must be a positive number of seconds, got {n}"))?,
        Value::String(s) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("must be a duration such as `30s` or `5m`, got `{s}`: {e}"))?,
        other => {
            return Err(format!(
                "must be seconds or a duration such as `30s`, got {other}"
            ));
        }
    };
    if duration.is_zero() {
        return Err("must be more than zero".into());
    }
    // Deadlines are instants from now: a longer one would overflow them.
    if duration > MAX {
        return Err(format!(
            "must be at most {MAX_DAYS} days, got {}",
            humantime::format_duration(duration)
        ));
    }
    Ok(duration)
}

/// The longest timeout, in days.
pub const MAX_DAYS: u64 = 366;

/// The longest timeout: a year and a day.
pub const MAX: Duration = Duration::from_secs(MAX_DAYS * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_seconds_and_texts_durations() {
        assert_eq!(parse(&json!(30)), Ok(Duration::from_secs(30)));
        assert_eq!(parse(&json!(0.25)), Ok(Duration::from_millis(250)));
        assert_eq!(parse(&json!("90s")), Ok(Duration::from_secs(90)));
        assert_eq!(parse(&json!(" 5m ")), Ok(Duration::from_secs(300)));
        assert_eq!(parse(&json!("1h 30m")), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn timeouts_that_would_overflow_a_deadline_are_refused() {
        for huge in [
            "18446744073709551615s",
            "9223372036854775807s",
            "99999999999h",
            "367days",
        ] {
            let why = parse(&json!(huge)).unwrap_err();
            assert!(
                why.starts_with("must be at most 366 days, got "),
                "{huge}: {why}"
            );
        }
        assert_eq!(parse(&json!("366days")), Ok(MAX));
        let why = parse(&json!(1e8)).unwrap_err();
        assert!(why.starts_with("must be at most"), "{why}");
    }

    #[test]
    fn zero_negative_huge_and_other_values_are_refused_with_why() {
        assert_eq!(parse(&json!("0s")), Err("must be more than zero".into()));
        for number in [json!(0), json!(-1), json!(1e9)] {
            let why = parse(&number).unwrap_err();
            assert!(
                why.starts_with("must be a positive number of seconds"),
                "{why}"
            );
        }
        let why = parse(&json!("soon")).unwrap_err();
        assert!(
            why.starts_with("must be a duration such as `30s` or `5m`, got `soon`: "),
            "{why}"
        );
        for other in [json!(true), json!(null), json!([1]), json!({"s": 1})] {
            let why = parse(&other).unwrap_err();
            assert!(why.starts_with("must be seconds or a duration"), "{why}");
        }
    }
}
