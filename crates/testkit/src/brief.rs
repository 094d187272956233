//! `Brief`: a value's `Debug` text with long runs of one character shortened, so that rows
//! with kilobytes of padding fit in a failure message.

use std::fmt;

/// Runs of one character longer than this are shortened.
pub const RUN_LEN_MAX: usize = 8;

/// Prints `{:?}` of the value with every run of more than [`RUN_LEN_MAX`] equal characters
/// written as `<N x c>`: `Text("aaaa...a")` of 1200 bytes prints as `Text("<1200 x a>")`.
pub struct Brief<'a, T: fmt::Debug + ?Sized>(pub &'a T);

impl<T: fmt::Debug + ?Sized> fmt::Display for Brief<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shorten_runs(&format!("{:?}", self.0)))
    }
}

/// `text` with every run of more than [`RUN_LEN_MAX`] equal characters written `<N x c>`.
pub fn shorten_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let mut run_len = 1;
        while chars.peek() == Some(&c) {
            chars.next();
            run_len += 1;
        }
        if run_len > RUN_LEN_MAX {
            out.push_str(&format!("<{run_len} x {c}>"));
        } else {
            out.extend(std::iter::repeat_n(c, run_len));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long runs shrink to a count; short ones stay as they are.
    #[test]
    fn long_runs_become_counts() {
        let text = format!("ab{}cc", "x".repeat(100));
        assert_eq!(shorten_runs(&text), "ab<100 x x>cc");
        assert_eq!(Brief(&"aaaa").to_string(), "\"aaaa\"");
    }
}
