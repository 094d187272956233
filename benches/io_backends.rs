//! Placeholder; see the io_uring helper's work.
fn main() {}
