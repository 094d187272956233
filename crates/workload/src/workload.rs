//! The workloads: YCSB's core workloads A-F on the usertable, and analytic queries on the
//! orders table.

use std::ops::Bound;

use rand::Rng;
use storelab_table::{IndexScanMethod, Result, ScanSpec, Table, Value};

use crate::dataset::{ORDERS_CUSTOMERS, ORDERS_PER_DAY, Orders, UserTable};
use crate::generator::{Distribution, KeyChooser};

/// The kinds of operation a workload issues (the rows of the latency table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// Point read by primary key.
    Read,
    /// Update of one field.
    Update,
    /// Insert of a new record.
    Insert,
    /// Primary-key range scan.
    Scan,
    /// Read, then update the same record.
    ReadModifyWrite,
    /// One analytic query (a whole scan or range).
    Query,
}

impl OpKind {
    /// The name in reports and JSON (YCSB's names).
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Update => "update",
            OpKind::Insert => "insert",
            OpKind::Scan => "scan",
            OpKind::ReadModifyWrite => "read-modify-write",
            OpKind::Query => "query",
        }
    }
}

/// A YCSB-style operation mix on the usertable.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct YcsbMix {
    /// Proportion of reads.
    pub read: f64,
    /// Proportion of updates.
    pub update: f64,
    /// Proportion of inserts.
    pub insert: f64,
    /// Proportion of scans.
    pub scan: f64,
    /// Proportion of read-modify-writes.
    pub read_modify_write: f64,
    /// How records are chosen.
    pub distribution: Distribution,
    /// Scan lengths are uniform in `1..=scan_length_max`.
    pub scan_length_max: u64,
}

impl YcsbMix {
    /// YCSB core workload `A`..`F`: read/update/insert/scan/read-modify-write proportions
    /// and request distribution as in YCSB's `workloads/workload[a-f]` files.
    pub fn core(letter: char) -> Option<YcsbMix> {
        let (read, update, insert, scan, rmw, distribution) = match letter.to_ascii_uppercase() {
            'A' => (0.5, 0.5, 0.0, 0.0, 0.0, Distribution::Zipfian),
            'B' => (0.95, 0.05, 0.0, 0.0, 0.0, Distribution::Zipfian),
            'C' => (1.0, 0.0, 0.0, 0.0, 0.0, Distribution::Zipfian),
            'D' => (0.95, 0.0, 0.05, 0.0, 0.0, Distribution::Latest),
            'E' => (0.0, 0.0, 0.05, 0.95, 0.0, Distribution::Zipfian),
            'F' => (0.5, 0.0, 0.0, 0.0, 0.5, Distribution::Zipfian),
            _ => return None,
        };
        Some(YcsbMix {
            read,
            update,
            insert,
            scan,
            read_modify_write: rmw,
            distribution,
            scan_length_max: 100,
        })
    }

    /// Draws the next operation kind.
    pub fn draw(&self, rng: &mut impl Rng) -> OpKind {
        let mut u: f64 = rng.random::<f64>()
            * (self.read + self.update + self.insert + self.scan + self.read_modify_write);
        for (p, kind) in [
            (self.read, OpKind::Read),
            (self.update, OpKind::Update),
            (self.insert, OpKind::Insert),
            (self.scan, OpKind::Scan),
            (self.read_modify_write, OpKind::ReadModifyWrite),
        ] {
            if u < p {
                return kind;
            }
            u -= p;
        }
        OpKind::Read
    }
}

/// An analytic query on the orders table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Query {
    /// TPC-H Q6-like: a full scan summing `o_amount` over a date range and an amount filter.
    ScanAggregate,
    /// TPC-H Q1-like: a full scan grouping by status (count, sum, average).
    GroupBy,
    /// A primary-key range scan of 1,000 rows at a random start.
    PkRange,
    /// A secondary range on `o_date` (correlated with the key): 10 days, ~1,000 rows.
    CorrelatedRange,
    /// A secondary range on `o_cust` (uncorrelated): 10 customers' orders.
    UncorrelatedRange,
    /// Insert one order with the next id (ascending keys: the B+tree's rightmost leaf).
    InsertSequential,
    /// Insert one order with a random id (keys all over the tree).
    InsertRandom,
    /// Update `o_amount` (no index) of a random order: HOT in the heap, in place in the
    /// clustered engine.
    UpdateNonIndexed,
    /// Update `o_cust` (indexed) of a random order: an entry in every heap index, two
    /// secondary entries in the clustered engine.
    UpdateIndexed,
}

impl Query {
    /// Every query.
    pub const ALL: [Query; 9] = [
        Query::ScanAggregate,
        Query::GroupBy,
        Query::PkRange,
        Query::CorrelatedRange,
        Query::UncorrelatedRange,
        Query::InsertSequential,
        Query::InsertRandom,
        Query::UpdateNonIndexed,
        Query::UpdateIndexed,
    ];

    /// The operation kind its latencies are recorded under.
    pub fn kind(self) -> OpKind {
        match self {
            Query::InsertSequential | Query::InsertRandom => OpKind::Insert,
            Query::UpdateNonIndexed | Query::UpdateIndexed => OpKind::Update,
            _ => OpKind::Query,
        }
    }

    /// True for the single-row writes (run as many times as YCSB operations, not as
    /// analytic queries).
    pub fn is_write(self) -> bool {
        self.kind() != OpKind::Query
    }

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Query::ScanAggregate => "scan-agg",
            Query::GroupBy => "group-by",
            Query::PkRange => "pk-range",
            Query::CorrelatedRange => "sec-range-corr",
            Query::UncorrelatedRange => "sec-range-uncorr",
            Query::InsertSequential => "insert-seq",
            Query::InsertRandom => "insert-rand",
            Query::UpdateNonIndexed => "update-nonindexed",
            Query::UpdateIndexed => "update-indexed",
        }
    }
}

/// Which workload a run executes.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Workload {
    /// A YCSB mix on the usertable.
    Ycsb {
        /// The workload's letter (for names), or `-` for a custom mix.
        letter: char,
        /// The mix.
        mix: YcsbMix,
    },
    /// An analytic query on the orders table, repeated.
    Analytic {
        /// The query.
        query: Query,
        /// Secondary ranges: bitmap-style fetch (sorted row locations, prefetch).
        bitmap: bool,
    },
}

impl Workload {
    /// Parses `a`..`f`, `scan-agg`, `group-by`, `pk-range`, `sec-range-corr[-bitmap]`,
    /// `sec-range-uncorr[-bitmap]`.
    pub fn parse(name: &str) -> std::result::Result<Workload, String> {
        let lower = name.to_ascii_lowercase();
        if lower.len() == 1
            && let Some(letter) = lower.chars().next()
            && let Some(mix) = YcsbMix::core(letter)
        {
            return Ok(Workload::Ycsb {
                letter: letter.to_ascii_uppercase(),
                mix,
            });
        }
        let (base, bitmap) = match lower.strip_suffix("-bitmap") {
            Some(b) => (b, true),
            None => (lower.as_str(), false),
        };
        for query in Query::ALL {
            if query.name() == base {
                return Ok(Workload::Analytic { query, bitmap });
            }
        }
        Err(format!(
            "unknown workload {name:?} (a, b, c, d, e, f, scan-agg, group-by, pk-range, \
             sec-range-corr, sec-range-uncorr (both optionally with -bitmap), insert-seq, \
             insert-rand, update-nonindexed, update-indexed)"
        ))
    }

    /// The workload's name.
    pub fn name(&self) -> String {
        match self {
            Workload::Ycsb { letter, .. } => format!("ycsb-{}", letter.to_ascii_lowercase()),
            Workload::Analytic { query, bitmap } => {
                format!("{}{}", query.name(), if *bitmap { "-bitmap" } else { "" })
            }
        }
    }

    /// The table the workload runs on.
    pub fn table(&self) -> &'static str {
        match self {
            Workload::Ycsb { .. } => crate::dataset::USERTABLE,
            Workload::Analytic { .. } => crate::dataset::ORDERS,
        }
    }
}

/// What one executed operation did, for the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpOutcome {
    /// Rows returned or visited.
    pub rows: u64,
    /// Bytes of user data written (for write amplification).
    pub bytes_written: u64,
}

/// Shared state of a YCSB run: the record count grows with inserts.
#[derive(Debug)]
pub struct YcsbState {
    /// The data set.
    pub data: UserTable,
    /// The seed rows are generated from.
    pub seed: u64,
    /// Records inserted so far (the next insert takes this number).
    pub next_insert: std::sync::atomic::AtomicU64,
    /// Records acknowledged (reads choose below this).
    pub acknowledged: std::sync::atomic::AtomicU64,
}

/// Executes one YCSB operation of `kind`.
pub fn run_ycsb_op(
    table: &dyn Table,
    state: &YcsbState,
    mix: &YcsbMix,
    chooser: &mut KeyChooser,
    kind: OpKind,
    rng: &mut impl Rng,
    counter: u64,
) -> Result<OpOutcome> {
    use std::sync::atomic::Ordering;
    let count = state.acknowledged.load(Ordering::Acquire).max(1);
    match kind {
        OpKind::Read => {
            let n = chooser.choose(rng, count, counter);
            let found = table.get(&[UserTable::key(n)])?;
            Ok(OpOutcome {
                rows: u64::from(found.is_some()),
                bytes_written: 0,
            })
        }
        OpKind::Update => {
            let n = chooser.choose(rng, count, counter);
            update_one(table, state, rng, n)
        }
        OpKind::ReadModifyWrite => {
            let n = chooser.choose(rng, count, counter);
            table.get(&[UserTable::key(n)])?;
            update_one(table, state, rng, n)
        }
        OpKind::Insert => {
            let n = state.next_insert.fetch_add(1, Ordering::AcqRel);
            table.insert(state.data.row(n, state.seed))?;
            state.acknowledged.fetch_max(n + 1, Ordering::AcqRel);
            Ok(OpOutcome {
                rows: 1,
                bytes_written: state.data.row_bytes(),
            })
        }
        OpKind::Scan => {
            let n = chooser.choose(rng, count, counter);
            let len = rng.random_range(1..=mix.scan_length_max);
            let spec = ScanSpec {
                lower: Bound::Included(vec![UserTable::key(n)]),
                limit: Some(len as usize),
                ..ScanSpec::default()
            };
            let rows = table.scan(&spec, None, &mut |_| true)?;
            Ok(OpOutcome {
                rows,
                bytes_written: 0,
            })
        }
        OpKind::Query => unreachable!("YCSB mixes issue no analytic queries"),
    }
}

/// Sets one random field of record `n` (YCSB's update: `writeallfields=false`).
fn update_one(
    table: &dyn Table,
    state: &YcsbState,
    rng: &mut impl Rng,
    n: u64,
) -> Result<OpOutcome> {
    let field = 1 + rng.random_range(0..state.data.field_count);
    let value = state.data.field(rng);
    table.update(&[UserTable::key(n)], &[(field, value)])?;
    Ok(OpOutcome {
        rows: 1,
        bytes_written: state.data.field_bytes as u64,
    })
}

/// Executes one analytic query or single-row write over an orders table of `record_count`
/// rows; `counter` numbers the operation (unique across threads), for new ids.
pub fn run_query(
    table: &dyn Table,
    query: Query,
    bitmap: bool,
    record_count: u64,
    rng: &mut impl Rng,
    counter: u64,
) -> Result<OpOutcome> {
    let days = (record_count as i64 / ORDERS_PER_DAY).max(1);
    let method = if bitmap {
        IndexScanMethod::Bitmap
    } else {
        IndexScanMethod::Plain
    };
    let row_bytes = 120;
    let rows = match query {
        Query::InsertSequential | Query::InsertRandom => {
            let id = if query == Query::InsertSequential {
                record_count + counter
            } else {
                // Above the loaded ids, scattered over 2^60 values (collisions: never in
                // practice; a duplicate would be reported, not hidden).
                record_count + (crate::generator::fnv1a64(counter ^ 0x1D5) >> 4)
            };
            let mut row = Orders.row(id, counter);
            row[0] = Value::Int(id as i64);
            table.insert(row)?;
            return Ok(OpOutcome {
                rows: 1,
                bytes_written: row_bytes,
            });
        }
        Query::UpdateNonIndexed | Query::UpdateIndexed => {
            let id = rng.random_range(0..record_count.max(1)) as i64;
            let change = if query == Query::UpdateIndexed {
                (
                    Orders::CUST,
                    Value::Int(rng.random_range(0..ORDERS_CUSTOMERS)),
                )
            } else {
                (
                    Orders::AMOUNT,
                    Value::Float(rng.random_range(100..100_000) as f64 / 100.0),
                )
            };
            table.update(&[Value::Int(id)], &[change])?;
            return Ok(OpOutcome {
                rows: 1,
                bytes_written: 8,
            });
        }
        Query::ScanAggregate => {
            // Q6: a year-like window of a quarter of the days, amounts under 500.
            let from = rng.random_range(0..days);
            let to = from + days / 4;
            let mut sum = 0.0;
            let pred = move |r: &storelab_table::Row| {
                matches!(r[Orders::DATE], Value::Int(d) if d >= from && d < to)
                    && matches!(r[Orders::AMOUNT], Value::Float(a) if a < 500.0)
            };
            let n = table.scan(&ScanSpec::default(), Some(&pred), &mut |r| {
                if let Value::Float(a) = r[Orders::AMOUNT] {
                    sum += a;
                }
                true
            })?;
            std::hint::black_box(sum);
            n
        }
        Query::GroupBy => {
            let mut groups: std::collections::BTreeMap<String, (u64, f64)> = Default::default();
            let n = table.scan(&ScanSpec::default(), None, &mut |r| {
                if let (Value::Text(s), Value::Float(a)) = (&r[Orders::STATUS], &r[Orders::AMOUNT])
                {
                    let g = groups.entry(s.clone()).or_default();
                    g.0 += 1;
                    g.1 += a;
                }
                true
            })?;
            std::hint::black_box(groups);
            n
        }
        Query::PkRange => {
            let start = rng.random_range(0..record_count.max(1)) as i64;
            let spec = ScanSpec {
                lower: Bound::Included(vec![Value::Int(start)]),
                limit: Some(1000),
                ..ScanSpec::default()
            };
            table.scan(&spec, None, &mut |_| true)?
        }
        Query::CorrelatedRange => {
            let from = rng.random_range(0..days);
            let spec = ScanSpec {
                index: Some("by_date".into()),
                lower: Bound::Included(vec![Value::Int(from)]),
                upper: Bound::Excluded(vec![Value::Int(from + 10)]),
                method,
                ..ScanSpec::default()
            };
            table.scan(&spec, None, &mut |_| true)?
        }
        Query::UncorrelatedRange => {
            let from = rng.random_range(0..ORDERS_CUSTOMERS);
            let spec = ScanSpec {
                index: Some("by_cust".into()),
                lower: Bound::Included(vec![Value::Int(from)]),
                upper: Bound::Excluded(vec![Value::Int(from + 10)]),
                method,
                ..ScanSpec::default()
            };
            table.scan(&spec, None, &mut |_| true)?
        }
    };
    Ok(OpOutcome {
        rows,
        bytes_written: 0,
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// Drawn operation kinds match each core workload's proportions within 1 percentage point.
    #[test]
    fn mixes_match_their_proportions() {
        let mut rng = StdRng::seed_from_u64(3);
        for letter in ['A', 'B', 'C', 'D', 'E', 'F'] {
            let mix = YcsbMix::core(letter).expect("a core workload");
            let draws = 100_000;
            let mut counts: std::collections::BTreeMap<OpKind, u64> = Default::default();
            for _ in 0..draws {
                *counts.entry(mix.draw(&mut rng)).or_default() += 1;
            }
            for (kind, want) in [
                (OpKind::Read, mix.read),
                (OpKind::Update, mix.update),
                (OpKind::Insert, mix.insert),
                (OpKind::Scan, mix.scan),
                (OpKind::ReadModifyWrite, mix.read_modify_write),
            ] {
                let got = counts.get(&kind).copied().unwrap_or(0) as f64 / draws as f64;
                assert!(
                    (got - want).abs() < 0.01,
                    "workload {letter}: {} drawn {got:.3}, expected {want}",
                    kind.name()
                );
            }
        }
    }

    /// Every workload name parses back to itself; unknown names are refused naming the
    /// accepted ones.
    #[test]
    fn workload_names_round_trip() {
        for name in [
            "a",
            "f",
            "scan-agg",
            "sec-range-uncorr-bitmap",
            "update-indexed",
        ] {
            let w = Workload::parse(name).expect("a workload");
            let again = Workload::parse(w.name().trim_start_matches("ycsb-")).expect("again");
            assert_eq!(w, again);
        }
        let e = Workload::parse("g").unwrap_err();
        assert!(e.contains("insert-seq"), "{e}");
    }
}
