//! Shows a run as it goes — a live line per running step on a terminal, plain
//! lines otherwise, or the events as JSON lines for machines — and ends it with a
//! summary table.

use crate::runner::{RunEvent, RunReport, Stamped, StepStatus};
use crate::workflow::Workflow;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A live line per running step (a terminal).
    Live,
    /// One plain line per event, on standard error.
    Plain,
    /// Every event as a JSON line on standard output.
    Json,
}

impl Style {
    /// Live on a terminal, plain lines otherwise.
    pub fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            Style::Live
        } else {
            Style::Plain
        }
    }
}

/// `text` and a newline on standard error, in one write (standard error is not
/// buffered: `eprintln!` writes each piece of its format on its own).
fn plain_line(mut text: String) {
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Renders run events.
pub struct Progress {
    style: Style,
    total: usize,
    /// Step id -> (number, action).
    steps: BTreeMap<String, (usize, String)>,
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
}

impl Progress {
    /// Progress of `workflow`'s steps, shown as `style` says.
    pub fn new(workflow: &Workflow, style: Style) -> Self {
        Self {
            style,
            total: workflow.steps.len(),
            steps: workflow
                .steps
                .iter()
                .map(|s| (s.id.clone(), (s.number, s.action.clone())))
                .collect(),
            multi: MultiProgress::new(),
            bars: BTreeMap::new(),
        }
    }

    fn label(&self, step: &str) -> String {
        match self.steps.get(step) {
            Some((number, action)) => format!("[{number}/{}] {action}", self.total),
            None => step.to_string(),
        }
    }

    /// Prints a line above the live ones (or alone).
    fn line(&self, text: String) {
        if self.style == Style::Live {
            let _ = self.multi.println(text);
        } else {
            plain_line(text);
        }
    }

    /// Shows one event.
    pub fn show(&mut self, stamped: &Stamped) {
        if self.style == Style::Json {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(
                stdout,
                "{}",
                serde_json::to_string(stamped).expect("events serialize")
            );
            return;
        }
        match &stamped.event {
            RunEvent::RunStarted { run, resumed, .. } => {
                if *resumed {
                    self.line(format!("resuming run {run}"));
                }
            }
            RunEvent::StepStarted { step, attempt, .. } => {
                let label = self.label(step);
                let suffix = if *attempt > 1 {
                    format!(" (try {attempt})")
                } else {
                    String::new()
                };
                if self.style == Style::Live {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
                            .expect("a valid template"),
                    );
                    bar.set_prefix(format!("{label}{suffix}"));
                    bar.enable_steady_tick(Duration::from_millis(100));
                    if let Some(old) = self.bars.insert(step.clone(), bar) {
                        old.finish_and_clear();
                    }
                } else {
                    plain_line(format!("{label} started{suffix}"));
                }
            }
            RunEvent::StepProgress { step, message } => match self.bars.get(step) {
                Some(bar) => bar.set_message(message.clone()),
                None => plain_line(format!("{} {message}", self.label(step))),
            },
            RunEvent::StepRetried {
                step,
                attempt,
                delay_ms,
                error,
            } => {
                if let Some(bar) = self.bars.remove(step) {
                    bar.finish_and_clear();
                }
                self.line(format!(
                    "! {} failed: {error}; trying again in {} (try {attempt})",
                    self.label(step),
                    duration_text(Duration::from_millis(*delay_ms))
                ));
            }
            RunEvent::StepFinished {
                step,
                status,
                duration_ms,
                error,
                ..
            } => {
                if let Some(bar) = self.bars.remove(step) {
                    bar.finish_and_clear();
                }
                let (mark, word) = match status {
                    StepStatus::Success => ("✓", "done".to_string()),
                    StepStatus::Cached => (
                        "↺",
                        "reused (unchanged since it last succeeded)".to_string(),
                    ),
                    StepStatus::Failed => (
                        "✗",
                        format!("failed: {}", error.as_deref().unwrap_or("failed")),
                    ),
                    StepStatus::Skipped => ("-", "skipped".to_string()),
                };
                self.line(format!(
                    "{mark} {} {word} ({})",
                    self.label(step),
                    duration_text(Duration::from_millis(*duration_ms))
                ));
            }
            RunEvent::StepSkipped { step, reason } => {
                self.line(format!("- {} skipped: {reason}", self.label(step)));
            }
            RunEvent::RunFinished { .. } => {
                for (_, bar) in std::mem::take(&mut self.bars) {
                    bar.finish_and_clear();
                }
            }
            RunEvent::RunCancelled { reason } => {
                for (_, bar) in std::mem::take(&mut self.bars) {
                    bar.finish_and_clear();
                }
                self.line(format!("✗ run cancelled: {reason}"));
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

/// The summary table: step, action, service, status, duration.
pub fn summary(report: &RunReport) -> String {
    let rows: Vec<[String; 6]> = report
        .steps
        .iter()
        .map(|s| {
            let status = match (s.status, s.continued) {
                (StepStatus::Failed, true) => "failed (continued)",
                (status, _) => status.as_str(),
            };
            [
                s.number.to_string(),
                s.id.clone(),
                s.action.clone(),
                s.service().to_string(),
                status.to_string(),
                duration_text(s.duration),
            ]
        })
        .collect();
    let header = ["#", "id", "step", "service", "status", "duration"].map(String::from);
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
    let ok = report.steps.iter().filter(|s| s.status.succeeded()).count();
    let cached = report
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Cached)
        .count();
    let reused = if cached > 0 {
        format!(" ({cached} reused)")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "{}: {ok} of {} steps succeeded{reused} in {} (run {})\n",
        report.workflow,
        report.steps.len(),
        duration_text(report.duration),
        report.run_id
    ));
    out
}

/// Prints the summary to standard output.
pub fn print_summary(report: &RunReport) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(summary(report).as_bytes());
    let _ = stdout.flush();
}
