//! Shows a run as it goes (a live line per step on a terminal, plain lines
//! otherwise) and ends it with a summary table.

use crate::runner::{RunEvent, RunReport, StepOutcome};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Renders run events to standard error.
pub struct Progress {
    live: bool,
    total: usize,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Live lines when standard error is a terminal, plain lines otherwise.
    pub fn new(total: usize) -> Self {
        Self {
            live: std::io::stderr().is_terminal(),
            total,
            bar: None,
        }
    }

    /// Shows one event.
    pub fn show(&mut self, event: RunEvent<'_>) {
        match event {
            RunEvent::Started(step) => {
                let label = format!("[{}/{}] {}", step.number, self.total, step.action);
                if self.live {
                    let bar = ProgressBar::new_spinner();
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
                            .expect("a valid template"),
                    );
                    bar.set_prefix(label);
                    bar.enable_steady_tick(Duration::from_millis(100));
                    self.bar = Some(bar);
                } else {
                    eprintln!("{label} started");
                }
            }
            RunEvent::Progress(step, message) => match &self.bar {
                Some(bar) => bar.set_message(message),
                None => eprintln!("[{}/{}] {} {message}", step.number, self.total, step.action),
            },
            RunEvent::Finished(step, report) => {
                let (mark, word) = match &report.outcome {
                    StepOutcome::Success => ("✓", "done".to_string()),
                    StepOutcome::Failed(error) => ("✗", format!("failed: {error}")),
                    StepOutcome::Skipped => ("-", "skipped".to_string()),
                };
                let line = format!(
                    "{mark} [{}/{}] {} {word} ({})",
                    step.number,
                    self.total,
                    step.action,
                    duration_text(report.duration)
                );
                // The spinner line is replaced by the final one.
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!("{line}");
            }
        }
    }
}

/// `12 ms`, `1.25 s`, `2 min 5 s`.
pub fn duration_text(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!(
            "{} min {} s",
            duration.as_secs() / 60,
            duration.as_secs() % 60
        )
    }
}

/// The summary table: step, service, status, duration.
pub fn summary(report: &RunReport) -> String {
    let rows: Vec<[String; 5]> = report
        .steps
        .iter()
        .map(|s| {
            let status = match &s.outcome {
                StepOutcome::Success => "success",
                StepOutcome::Failed(_) => "failed",
                StepOutcome::Skipped => "skipped",
            };
            [
                s.number.to_string(),
                s.action.clone(),
                s.service().to_string(),
                status.to_string(),
                duration_text(s.duration),
            ]
        })
        .collect();
    let header = ["#", "step", "service", "status", "duration"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let ok = report
        .steps
        .iter()
        .filter(|s| s.outcome == StepOutcome::Success)
        .count();
    out.push_str(&format!(
        "{}: {ok} of {} steps succeeded in {}\n",
        report.workflow,
        report.steps.len(),
        duration_text(report.duration)
    ));
    out
}

/// Prints the summary to standard output.
pub fn print_summary(report: &RunReport) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(summary(report).as_bytes());
    let _ = stdout.flush();
}
