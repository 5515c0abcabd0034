//! Progress on stderr while a large file is read, when stderr is a terminal: packets,
//! connections, rate. Nothing is drawn during the first second, so small files stay quiet, and
//! nothing at all when stderr is redirected.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Checked every this many packets (reading the clock per packet would cost more than it says).
const EVERY: u64 = 1 << 16;

pub struct Progress {
    enabled: bool,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            started: Instant::now(),
            bar: None,
        }
    }

    /// Called per packet with the running counts; draws at most a few times a second.
    #[inline]
    pub fn tick(&mut self, packets: u64, connections: u64) {
        if self.enabled && packets % EVERY == 0 {
            self.draw(packets, connections);
        }
    }

    fn draw(&mut self, packets: u64, connections: u64) {
        let elapsed = self.started.elapsed();
        if elapsed < Duration::from_secs(1) {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
            b
        });
        let rate = packets as f64 / elapsed.as_secs_f64();
        bar.set_message(format!(
            "{packets} packets, {connections} connections, {:.2} M packets/s",
            rate / 1e6
        ));
        bar.tick();
    }

    /// Removes the line before the report is printed.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}
