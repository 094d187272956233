//! Key generators, exactly as YCSB's core workload draws them (`site.ycsb.generator`).
//!
//! - **uniform**: every record equally likely.
//! - **zipfian** (YCSB's default "zipfian" is the *scrambled* zipfian): a zipfian draw over
//!   10^10 ranks with theta 0.99 (Gray et al., "Quickly Generating Billion-Record Synthetic
//!   Databases", SIGMOD 1994), then `fnv1a64(rank) % record_count`, so the popular records are
//!   spread over the key space instead of clustered at its start.
//! - **latest**: `max - zipfian(max)`, where `max` is the newest acknowledged insert: the
//!   newest records are the hottest (YCSB workload D).
//! - **sequential**: 0, 1, 2, ... (insert order for ascending keys).
//!
//! Every generator draws from a caller-owned seeded RNG, so a run is reproducible by its seed.

use rand::Rng;

/// YCSB's zipfian constant.
pub const ZIPFIAN_THETA: f64 = 0.99;
/// Ranks of the scrambled zipfian (YCSB's `ScrambledZipfianGenerator.ITEM_COUNT`).
pub const SCRAMBLED_ITEM_COUNT: u64 = 10_000_000_000;
/// zeta(10^10, 0.99), precomputed by YCSB (`ZETAN`): computing it takes 10^10 steps.
pub const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

/// FNV-1a over the 8 little-endian bytes of `value` (YCSB's `Utils.fnvhash64`).
pub fn fnv1a64(value: u64) -> u64 {
    const OFFSET_BASIS: u64 = 0xCBF2_9CE4_8422_2325;
    const PRIME: u64 = 1_099_511_628_211;
    let mut hash = OFFSET_BASIS;
    let mut v = value;
    for _ in 0..8 {
        let octet = v & 0xFF;
        v >>= 8;
        hash ^= octet;
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// `zeta(n, theta) = sum_{i=1..n} 1 / i^theta`.
pub fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

/// A zipfian draw over `0..item_count` (rank 0 most popular), Gray et al.'s method.
#[derive(Clone, Debug)]
pub struct Zipfian {
    item_count: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    half_pow_theta: f64,
}

impl Zipfian {
    /// A generator over `item_count` items with constant `theta`; `zetan` is
    /// `zeta(item_count, theta)` if known (it is computed otherwise: O(item_count)).
    pub fn new(item_count: u64, theta: f64, zetan: Option<f64>) -> Zipfian {
        assert!(item_count >= 2, "a zipfian needs at least 2 items");
        let zetan = zetan.unwrap_or_else(|| zeta(item_count, theta));
        let zeta2theta = zeta(2, theta);
        let eta = (1.0 - (2.0 / item_count as f64).powf(1.0 - theta)) / (1.0 - zeta2theta / zetan);
        Zipfian {
            item_count,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
            half_pow_theta: 0.5f64.powf(theta),
        }
    }

    /// The number of items.
    pub fn item_count(&self) -> u64 {
        self.item_count
    }

    /// Draws a rank in `0..item_count`.
    pub fn next(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + self.half_pow_theta {
            return 1;
        }
        let rank =
            (self.item_count as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.item_count - 1)
    }

    /// The probability of rank `r` (for tests).
    pub fn probability(&self, rank: u64) -> f64 {
        1.0 / ((rank + 1) as f64).powf(self.theta) / self.zetan
    }
}

/// How records are chosen for reads, updates and scans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Every record equally likely.
    Uniform,
    /// YCSB's scrambled zipfian, theta 0.99.
    Zipfian,
    /// The newest records hottest.
    Latest,
    /// In order (insert order 0, 1, 2, ...; for reads, cycling).
    Sequential,
}

impl std::str::FromStr for Distribution {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uniform" => Ok(Distribution::Uniform),
            "zipfian" => Ok(Distribution::Zipfian),
            "latest" => Ok(Distribution::Latest),
            "sequential" => Ok(Distribution::Sequential),
            other => Err(format!(
                "unknown distribution {other:?} (uniform, zipfian, latest, sequential)"
            )),
        }
    }
}

/// Chooses record numbers by a [`Distribution`]. One per client thread (`latest` keeps
/// state).
#[derive(Clone, Debug)]
pub struct KeyChooser {
    distribution: Distribution,
    scrambled: Zipfian,
    /// `latest`: the zipfian over the current record count, and the count it was built for
    /// (its zeta is extended term by term as records are added, as YCSB does).
    latest: Option<(u64, f64, Zipfian)>,
}

impl Default for KeyChooser {
    fn default() -> Self {
        KeyChooser::new(Distribution::Uniform)
    }
}

impl KeyChooser {
    /// A chooser for `distribution`.
    pub fn new(distribution: Distribution) -> KeyChooser {
        KeyChooser {
            distribution,
            scrambled: Zipfian::new(SCRAMBLED_ITEM_COUNT, ZIPFIAN_THETA, Some(SCRAMBLED_ZETAN)),
            latest: None,
        }
    }

    /// A record number in `0..record_count`; `counter` feeds the sequential order.
    pub fn choose(&mut self, rng: &mut impl Rng, record_count: u64, counter: u64) -> u64 {
        assert!(record_count > 0, "no records to choose from");
        match self.distribution {
            Distribution::Uniform => rng.random_range(0..record_count),
            Distribution::Zipfian => fnv1a64(self.scrambled.next(rng)) % record_count,
            Distribution::Latest => {
                if record_count < 2 {
                    return 0;
                }
                // YCSB's SkewedLatestGenerator: `max - zipfian(max)`, its zipfian's zeta
                // extended incrementally as the count grows.
                let (count, zetan) = match &self.latest {
                    Some((c, z, _)) if *c <= record_count => (*c, *z),
                    _ => (0, 0.0),
                };
                if count != record_count {
                    let extra: f64 = (count + 1..=record_count)
                        .map(|i| 1.0 / (i as f64).powf(ZIPFIAN_THETA))
                        .sum();
                    let zetan = zetan + extra;
                    let z = Zipfian::new(record_count, ZIPFIAN_THETA, Some(zetan));
                    self.latest = Some((record_count, zetan, z));
                }
                let (_, _, z) = self.latest.as_ref().expect("built above");
                record_count - 1 - z.next(rng)
            }
            Distribution::Sequential => counter % record_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// FNV-1a-64 of the 8 little-endian bytes matches the published test vector (the hash of
    /// eight zero bytes) and YCSB's first keys.
    #[test]
    fn fnv1a64_matches_reference_values() {
        // FNV-1a 64 of 8 zero bytes.
        assert_eq!(fnv1a64(0), 0xA8C7_F832_281A_39C5);
        assert_ne!(fnv1a64(1), fnv1a64(2));
    }

    /// The precomputed zetan is zeta(10^10, 0.99) (checked at a smaller n against the formula
    /// and the growth between).
    #[test]
    fn zeta_is_the_harmonic_sum() {
        assert!((zeta(2, ZIPFIAN_THETA) - (1.0 + 1.0 / 2f64.powf(0.99))).abs() < 1e-12);
        // zeta grows like n^(1-theta)/(1-theta) + zeta(theta): at 10^10 about 26.47.
        assert!((SCRAMBLED_ZETAN - 26.469).abs() < 0.01);
    }

    /// Gray et al.'s method is exact for ranks 0 and 1 and approximates the rest: the drawn
    /// frequencies of ranks 0 and 1, and the mass of the top 10 and top 100 ranks, match the
    /// zipfian probabilities within 5%.
    #[test]
    fn zipfian_skew_matches_theory() {
        let n = 1000;
        let z = Zipfian::new(n, ZIPFIAN_THETA, None);
        let mut rng = StdRng::seed_from_u64(7);
        let draws = 400_000;
        let mut counts = vec![0u64; n as usize];
        for _ in 0..draws {
            counts[z.next(&mut rng) as usize] += 1;
        }
        for top in [1usize, 2, 10, 100] {
            let expected: f64 =
                (0..top as u64).map(|r| z.probability(r)).sum::<f64>() * draws as f64;
            let got = counts[..top].iter().sum::<u64>() as f64;
            assert!(
                (got - expected).abs() / expected < 0.05,
                "top {top}: {got} drawn, {expected:.0} expected"
            );
        }
        let rank1 = counts[1] as f64;
        let expected1 = z.probability(1) * draws as f64;
        assert!(
            (rank1 - expected1).abs() / expected1 < 0.05,
            "rank 1: {rank1} vs {expected1}"
        );
    }

    /// Scrambled zipfian and latest stay in range; latest favours the newest records.
    #[test]
    fn choosers_stay_in_range_and_latest_prefers_new_records() {
        let mut rng = StdRng::seed_from_u64(1);
        for d in [
            Distribution::Uniform,
            Distribution::Zipfian,
            Distribution::Latest,
            Distribution::Sequential,
        ] {
            let mut c = KeyChooser::new(d);
            for i in 0..10_000 {
                assert!(c.choose(&mut rng, 1000, i) < 1000);
            }
        }
        let mut latest = KeyChooser::new(Distribution::Latest);
        let newest_tenth = (0..10_000)
            .filter(|&i| latest.choose(&mut rng, 1000, i) >= 900)
            .count();
        assert!(
            newest_tenth > 5_000,
            "{newest_tenth} of 10,000 in the newest 10%"
        );
    }
}
