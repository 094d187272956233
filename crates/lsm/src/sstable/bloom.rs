//! `BloomFilter`: one per table, so a get skips tables that cannot hold its key.
//!
//! ```text
//!  filter block contents
//!  +------------------------------ ... ---+---+
//!  | bit array (m bits, m/8 bytes)         | k |   k: probes per key, u8
//!  +------------------------------ ... ---+---+
//! ```
//!
//! A key's 64-bit hash `h` is split into two halves `h1`, `h2`; probe `i` sets bit
//! `(h1 + i * h2) mod m` (Kirsch and Mitzenmacher's double hashing, as LevelDB does). With
//! `b` bits per key and `k = round(b ln 2)` probes the false-positive rate is about
//! `(1 - e^(-k/b))^k`: 0.8% at 10 bits per key.

/// The most probes per key accepted (more never helps below 64 bits per key).
pub const BLOOM_PROBES_MAX: u8 = 30;
/// The largest filter accepted, in bytes (bounds the decoder's allocation).
pub const BLOOM_BYTES_MAX: usize = 64 << 20;

/// The hash used by filters: FNV-1a over the key, then the MurmurHash3 finaliser so that
/// every output bit depends on every input bit (FNV-1a alone mixes its high bits poorly).
pub fn bloom_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A decoded bloom filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BloomFilter {
    bits: Vec<u8>,
    probe_count: u8,
}

impl BloomFilter {
    /// A filter over the keys whose [`bloom_hash`]es are `hashes`, with `bits_per_key` bits
    /// per key (at least 64 bits in all).
    pub fn build(hashes: &[u64], bits_per_key: u32) -> BloomFilter {
        assert!(bits_per_key > 0, "a filter needs bits");
        let bit_count = (hashes.len() * bits_per_key as usize).max(64);
        let byte_count = bit_count.div_ceil(8).min(BLOOM_BYTES_MAX);
        let bit_count = byte_count * 8;
        let probe_count = ((f64::from(bits_per_key) * std::f64::consts::LN_2).round() as u8)
            .clamp(1, BLOOM_PROBES_MAX);
        let mut bits = vec![0u8; byte_count];
        for &h in hashes {
            for bit in probes(h, probe_count, bit_count) {
                bits[bit / 8] |= 1 << (bit % 8);
            }
        }
        BloomFilter { bits, probe_count }
    }

    /// False if the key with hash `h` is certainly absent; true if it may be present.
    pub fn may_contain(&self, h: u64) -> bool {
        let bit_count = self.bits.len() * 8;
        probes(h, self.probe_count, bit_count).all(|bit| self.bits[bit / 8] & (1 << (bit % 8)) != 0)
    }

    /// Bytes held in memory.
    pub fn size_bytes(&self) -> usize {
        self.bits.len() + 1
    }

    /// The filter block contents.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.bits.clone();
        out.push(self.probe_count);
        out
    }

    /// Decodes filter block contents; `Err` carries the reason.
    pub fn decode(bytes: &[u8]) -> Result<BloomFilter, String> {
        let Some((&probe_count, bits)) = bytes.split_last() else {
            return Err("empty filter block".into());
        };
        if bits.is_empty() || bits.len() > BLOOM_BYTES_MAX {
            return Err(format!("filter of {} bytes", bits.len()));
        }
        if !(1..=BLOOM_PROBES_MAX).contains(&probe_count) {
            return Err(format!("filter with {probe_count} probes"));
        }
        Ok(BloomFilter {
            bits: bits.to_vec(),
            probe_count,
        })
    }
}

fn probes(h: u64, probe_count: u8, bit_count: usize) -> impl Iterator<Item = usize> {
    let h1 = h as u32 as u64;
    let h2 = (h >> 32) | 1;
    (0..u64::from(probe_count))
        .map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % bit_count as u64) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every inserted key is found; absent keys are rejected about as often as theory says.
    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let hashes: Vec<u64> = (0..10_000u32)
            .map(|i| bloom_hash(format!("key{i}").as_bytes()))
            .collect();
        let filter = BloomFilter::build(&hashes, 10);
        assert!(hashes.iter().all(|&h| filter.may_contain(h)));
        let false_positives = (0..10_000u32)
            .filter(|i| filter.may_contain(bloom_hash(format!("absent{i}").as_bytes())))
            .count();
        assert!(
            false_positives < 200,
            "{false_positives} false positives in 10000"
        );
        let decoded = BloomFilter::decode(&filter.encode()).unwrap();
        assert_eq!(decoded, filter);
    }

    /// Malformed filter blocks are refused.
    #[test]
    fn bad_filter_blocks_are_refused() {
        assert!(BloomFilter::decode(&[]).is_err());
        assert!(BloomFilter::decode(&[7]).is_err());
        assert!(BloomFilter::decode(&[0xff, 0]).is_err());
        assert!(BloomFilter::decode(&[0xff, 31]).is_err());
    }
}
