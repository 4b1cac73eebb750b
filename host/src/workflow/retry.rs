//! `retry:`: how often a failed step is tried again, and the waits in between.

use crate::timeout;
use serde_json::Value;
use std::time::Duration;

/// How often a failed step is tried again, and how long to wait in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all (1: no retry).
    pub attempts: u32,
    /// The wait before the second try; doubled for each further one.
    pub backoff: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 1,
            backoff: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// The wait before try `attempt` (from 2): exponential, capped, with jitter
    /// (between half and all of it), so that retries of many steps spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(2).min(30);
        let full = self
            .backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        full.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// `retry: 3` or `retry: {attempts: 3, backoff: 2s, max_delay: 1m}`.
pub(super) fn parse(value: &Value) -> Result<Retry, String> {
    let attempts = |v: &Value| {
        v.as_u64()
            .filter(|n| (1..=100).contains(n))
            .map(|n| n as u32)
            .ok_or_else(|| format!("attempts must be a number from 1 to 100, got {v}"))
    };
    match value {
        Value::Number(_) => Ok(Retry {
            attempts: attempts(value)?,
            ..Retry::default()
        }),
        Value::Object(map) => {
            let mut retry = Retry::default();
            for (key, v) in map {
                match key.as_str() {
                    "attempts" => retry.attempts = attempts(v)?,
                    "backoff" => {
                        retry.backoff = timeout::parse(v).map_err(|w| format!("backoff {w}"))?
                    }
                    "max_delay" => {
                        retry.max_delay = timeout::parse(v).map_err(|w| format!("max_delay {w}"))?
                    }
                    other => {
                        return Err(format!(
                            "unknown field `{other}`; a retry has `attempts`, `backoff` and `max_delay`"
                        ));
                    }
                }
            }
            Ok(retry)
        }
        other => Err(format!(
            "must be a number of attempts or {{attempts, backoff, max_delay}}, got {other}"
        )),
    }
}
