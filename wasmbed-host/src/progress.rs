//! Progress bars for compile and upload, and a tracing writer that never tears them.
//!
//! Bars exist only when stderr is a terminal (and `-q` was not given); otherwise every method
//! here is a no-op and log lines go straight to stderr.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{
    HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle,
};
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
        let multi =
            (enabled && io::stderr().is_terminal()).then(|| ProgressDrawTarget::stderr_with_hz(10));
        multi.map_or_else(Ui::hidden, Ui::drawing_to)
    }

    /// Bars drawn to `target` (a terminal, or a `TermLike` in tests).
    pub fn drawing_to(target: ProgressDrawTarget) -> Ui {
        Ui {
            multi: Some(MultiProgress::with_draw_target(target)),
        }
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
    // Device names are cut to 10 columns and the bar takes what is left of the line, so an
    // upload line fits 80 columns.
    let template = if phase == "upload" {
        "{prefix:>10!.cyan.bold} upload [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {true_eta}"
    } else {
        "{prefix:>10!.cyan.bold} {msg:7} {spinner} {elapsed}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("true_eta", true_eta)
        .progress_chars("=> ")
}

/// The time left at the current rate, or `-` while there is no rate yet (nothing moved, or
/// nothing for so long that the estimate fell to zero): never a made-up `0s`.
fn true_eta(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let rate = state.per_sec();
    let left = state.len().map(|len| len.saturating_sub(state.pos()));
    let _ = match left {
        Some(0) => w.write_str("0s"),
        Some(left) if rate.is_finite() && rate >= 1.0 && state.pos() > 0 => {
            let secs = left as f64 / rate;
            write!(
                w,
                "{:#}",
                HumanDuration(Duration::from_secs_f64(secs.min(1e7)))
            )
        }
        _ => w.write_str("-"),
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::{Arc, Mutex};
    use std::thread;

    /// An 80-column terminal that keeps every line drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen {
        drawn: Arc<Mutex<Vec<String>>>,
    }

    impl Screen {
        /// The last upload line drawn, without colour codes.
        fn upload_line(&self) -> String {
            let drawn = self.drawn.lock().unwrap();
            let line = drawn.iter().rev().find(|l| l.contains(" upload ["));
            strip_ansi(line.map_or("", String::as_str))
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            let mut drawn = self.drawn.lock().unwrap();
            drawn.extend(s.lines().map(str::to_string));
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // CSI: ESC [ parameters… final letter.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn upload(done: u64, total: u64) -> Event {
        Event::Progress {
            phase: ProgressPhase::Upload,
            done,
            total,
        }
    }

    /// Waits (at most 10 s: ticks are late on a busy machine) for an upload line with `want`.
    fn drawn_with(screen: &Screen, want: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let line = screen.upload_line();
            if line.contains(want) || std::time::Instant::now() > deadline {
                return line;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The word after `ETA ` in a bar line.
    fn eta(line: &str) -> &str {
        line.split("ETA ").nth(1).unwrap_or("").trim()
    }

    #[test]
    fn upload_bar_shows_bytes_rate_and_a_true_eta_within_80_columns() {
        let screen = Screen::default();
        let ui = Ui::drawing_to(ProgressDrawTarget::term_like(Box::new(screen.clone())));
        // A name longer than the bar's 10-column label.
        let mut tracker = ui.tracker("nucleo-f446re-lab-bench-3");
        let total = 300 * 1024;
        tracker.on_event(&upload(0, total));
        let idle = drawn_with(&screen, " 0 B/300.00 KiB ");
        assert!(idle.contains(" 0 B/300.00 KiB "), "{idle}");
        assert_eq!(eta(&idle), "-", "no rate yet, so no ETA: {idle}");
        // Half-second chunks of 4 KiB (the gateway's chunking at a slow line rate; the sleeps
        // are shorter to keep the test short).
        for i in 1..=4 {
            thread::sleep(Duration::from_millis(150));
            tracker.on_event(&upload(i * 4096, total));
        }
        let line = drawn_with(&screen, " 16.00 KiB/300.00 KiB ");
        assert!(line.contains(" 16.00 KiB/300.00 KiB "), "{line}");
        let rate = line.split(' ').find(|w| w.ends_with("B/s")).unwrap_or("");
        assert!(
            !rate.is_empty() && !line.contains(" 0 B/s"),
            "no rate in {line}"
        );
        let eta = eta(&line);
        assert!(
            eta.ends_with('s') || eta.ends_with('m') || eta.ends_with('h'),
            "ETA {eta:?} in {line}"
        );
        assert_ne!(eta, "0s", "{line}");
        // The name is cut to its label, the bar takes the rest: the line fits 80 columns.
        assert!(line.starts_with("ab-bench-3 upload ["), "{line}");
        let width = line.chars().count();
        assert!(width <= 80, "{width} columns: {line}");
        // Every line drawn, idle or moving, fits.
        for l in screen.drawn.lock().unwrap().iter() {
            let l = strip_ansi(l);
            assert!(l.chars().count() <= 80, "{l}");
        }
        tracker.finish();
    }
}
