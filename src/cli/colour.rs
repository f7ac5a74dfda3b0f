//! Colour: `--color auto|always|never`, and `NO_COLOR` (any non-empty value)
//! turns it off. `auto` colours only what goes to a terminal, so a pipe or a
//! file gets the same plain bytes as ever.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// When to colour, as `--color` takes it.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum When {
    /// Where the output is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    Always,
    Never,
}

static CHOICE: OnceLock<When> = OnceLock::new();

/// Record the command line's choice (once, before any output).
pub fn choose(when: When) {
    let _ = CHOICE.set(when);
}

fn on(terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match CHOICE.get().copied().unwrap_or_default() {
        When::Always => true,
        When::Never => false,
        When::Auto => terminal && !no_color,
    }
}

/// Whether stdout is coloured.
pub fn stdout() -> bool {
    on(std::io::stdout().is_terminal())
}

/// Whether stderr is coloured.
pub fn stderr() -> bool {
    on(std::io::stderr().is_terminal())
}

/// An SGR colour code.
#[derive(Clone, Copy)]
pub enum Paint {
    Red = 31,
    Green = 32,
    Yellow = 33,
    Blue = 34,
    Magenta = 35,
    Cyan = 36,
    Dim = 2,
}

/// `text` in `paint` where `enabled`, else `text` as it is.
pub fn paint(enabled: bool, paint: Paint, text: &str) -> String {
    match enabled {
        true => format!("\x1b[{}m{text}\x1b[0m", paint as u8),
        false => text.to_string(),
    }
}
