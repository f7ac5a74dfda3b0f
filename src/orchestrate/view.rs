//! The live view: on a terminal, one progress line per running agent (task,
//! role, attempt, elapsed); otherwise plain timestamped lines on stderr.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::model::text::printable;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub struct View {
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl Default for View {
    fn default() -> View {
        View::new()
    }
}

impl View {
    /// Progress bars when stderr is a terminal, plain lines otherwise.
    pub fn new() -> View {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| (MultiProgress::new(), Mutex::new(HashMap::new())));
        View { bars }
    }

    /// An agent started on `task`.
    pub fn started(&self, task: &str, role: &str, attempt: u32, title: &str) {
        let line = format!(
            "{task} {role} attempt {attempt}: {}",
            crate::model::one_line(title, 50)
        );
        match &self.bars {
            Some((multi, bars)) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{elapsed:>4}] {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(line);
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key(task, role), bar);
            }
            None => plain(&format!("{line}: started")),
        }
    }

    /// The agent on `task` ended with `outcome` (a few words).
    pub fn finished(&self, task: &str, role: &str, outcome: &str) {
        let line = format!("{task} {role}: {}", printable(outcome));
        match &self.bars {
            Some((multi, bars)) => {
                if let Some(bar) = bars
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key(task, role))
                {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(line);
            }
            None => plain(&line),
        }
    }

    /// Anything else worth a line (control characters removed: it may
    /// quote an agent's output).
    pub fn say(&self, line: &str) {
        let line = &*printable(line);
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(line);
            }
            None => plain(line),
        }
    }
}

fn key(task: &str, role: &str) -> String {
    format!("{task}/{role}")
}

fn plain(line: &str) {
    let now = jiff::Zoned::now().strftime("%H:%M:%S");
    eprintln!("{now} {}", printable(line));
}
