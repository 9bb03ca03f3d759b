//! Progress bars for compile and upload, and a tracing writer that never tears them.
//!
//! Bars exist only when stderr is a terminal (and `-q` was not given); otherwise every method
//! here is a no-op and log lines go straight to stderr.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;

use crate::client::Event;
use wasmbed_api::ProgressPhase;

/// The terminal UI shared by all requests of one command.
#[derive(Clone, Default)]
pub struct Ui {
    multi: Option<MultiProgress>,
}

impl Ui {
    /// Bars on stderr when it is a terminal and `enabled`; hidden otherwise.
    pub fn new(enabled: bool) -> Ui {
        let multi = (enabled && io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Ui { multi }
    }

    /// A UI that never draws (tests, `--json` pipelines).
    pub fn hidden() -> Ui {
        Ui { multi: None }
    }

    /// A tracker turning one request's progress events into bars labelled with `device`.
    pub fn tracker(&self, device: &str) -> Tracker {
        Tracker {
            multi: self.multi.clone(),
            device: device.to_string(),
            bars: HashMap::new(),
        }
    }

    /// A `tracing` writer that prints above the bars.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter {
            multi: self.multi.clone(),
        }
    }
}

/// Progress bars of one request.
pub struct Tracker {
    multi: Option<MultiProgress>,
    device: String,
    bars: HashMap<String, ProgressBar>,
}

fn style(phase: &str) -> ProgressStyle {
    // The gateway reports compile progress only at its start and end (clang gives nothing in
    // between), so compiling is a spinner with the elapsed time; uploads have real byte counts.
    let template = if phase == "upload" {
        "{prefix:>10.cyan.bold} upload [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
    } else {
        "{prefix:>10.cyan.bold} {msg:7} {spinner} {elapsed}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Tracker {
    /// Updates the bars from a gateway event; log events are ignored here.
    pub fn on_event(&mut self, event: &Event) {
        let (Some(multi), Event::Progress { phase, done, total }) = (&self.multi, event) else {
            return;
        };
        let phase = match phase {
            ProgressPhase::Compile => "compile",
            ProgressPhase::Upload => "upload",
            // The gateway's compile slots are busy: a spinner until the compile starts.
            ProgressPhase::Queued => "queued",
        };
        if phase == "compile" {
            if let Some(queued) = self.bars.remove("queued") {
                queued.finish_and_clear();
            }
        }
        let bar = self.bars.entry(phase.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(*total));
            bar.set_style(style(phase));
            bar.set_prefix(self.device.clone());
            bar.set_message(phase.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if *total > 0 && bar.length() != Some(*total) {
            bar.set_length(*total);
        }
        bar.set_position(*done);
        if phase != "upload" && *total > 0 && done >= total {
            bar.finish_with_message(format!("{phase} done"));
        }
    }

    /// Removes the bars of this request.
    pub fn finish(self) {
        for bar in self.bars.into_values() {
            bar.finish_and_clear();
        }
    }
}

/// A `MakeWriter` for `tracing_subscriber` that prints through `MultiProgress::println`.
#[derive(Clone)]
pub struct LogWriter {
    multi: Option<MultiProgress>,
}

/// One log record being written; emitted as a whole when dropped.
pub struct LineBuffer {
    multi: Option<MultiProgress>,
    buf: Vec<u8>,
}

impl Write for LineBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end_matches('\n');
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => {
                let _ = writeln!(io::stderr().lock(), "{text}");
            }
        }
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        LineBuffer {
            multi: self.multi.clone(),
            buf: Vec::new(),
        }
    }
}
