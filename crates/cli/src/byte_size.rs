//! `ByteSize`: a byte count written the way people type it (`8KiB`, `256MiB`, `1G`, `4096`).
//!
//! Units are binary, as in fio: `K`, `KB`, `KiB` all mean 1024 bytes (likewise `M`, `G`, `T`),
//! and case does not matter. A bare number is a count of bytes. Fractions are not accepted:
//! every size this tool takes must be an exact multiple of something (usually 4096), and
//! `1.5G` invites rounding surprises.

use std::fmt;
use std::str::FromStr;

/// A number of bytes, parsed from `8KiB`-style text and displayed the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// Units accepted after the number, each with its multiplier (binary, like fio).
const UNITS: [(&str, u64); 13] = [
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kb", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mb", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gb", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1 << 40),
    ("tib", 1 << 40),
];

impl ByteSize {
    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits_end);
        if number.is_empty() {
            return Err(format!(
                "{text:?} is not a size (examples: 4096, 8KiB, 256MiB, 1G)"
            ));
        }
        let unit_lower = unit.trim().to_ascii_lowercase();
        let Some(&(_, multiplier)) = UNITS.iter().find(|(name, _)| *name == unit_lower) else {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?} (use B, K/KiB, M/MiB, G/GiB or T/TiB)"
            ));
        };
        let count: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is too large"))?;
        count
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly (`8KiB`, `1GiB`, `12345B`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMED: [(&str, u64); 4] = [
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        for (name, multiplier) in NAMED {
            if self.0 >= multiplier && self.0.is_multiple_of(multiplier) {
                return write!(f, "{}{name}", self.0 / multiplier);
            }
        }
        write!(f, "{}B", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented spelling parses to the binary value.
    #[test]
    fn sizes_parse_with_binary_units() {
        let cases = [
            ("4096", 4096),
            ("8KiB", 8 << 10),
            ("8k", 8 << 10),
            ("128KB", 128 << 10),
            ("256MiB", 256 << 20),
            ("1G", 1 << 30),
            ("2GiB", 2 << 30),
            ("1 GiB", 1 << 30),
            ("512b", 512),
        ];
        for (text, bytes) in cases {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
    }

    /// Garbage, fractions, unknown units and overflow are errors, not panics.
    #[test]
    fn bad_sizes_are_errors() {
        for text in [
            "",
            "G",
            "1.5G",
            "12 parsecs",
            "-4096",
            "99999999999999999999",
            "16777216T",
        ] {
            assert!(text.parse::<ByteSize>().is_err(), "{text}");
        }
    }

    /// Display picks the largest exact unit, so parse(display(x)) == x.
    #[test]
    fn display_round_trips() {
        for bytes in [512, 4096, 8192, 131072, 1 << 30, 3 << 30, 12345] {
            let shown = ByteSize(bytes).to_string();
            assert_eq!(shown.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{shown}");
        }
        assert_eq!(ByteSize(8192).to_string(), "8KiB");
        assert_eq!(ByteSize(1 << 30).to_string(), "1GiB");
    }
}
