//! Experiment 10: buffer pool policy and size sweeps.
//!
//! YCSB's usertable is bulk-loaded into a heap and into a clustered B+tree. Each engine is
//! then reopened with every combination of eviction policy (PostgreSQL's clock sweep, or
//! exact LRU) and pool size (from a few percent of the data to all of it), with `O_DIRECT`
//! page files so that the pool is the only cache, and two workloads are measured on it:
//!
//! 1. YCSB C: zipfian point reads (the standard runner, after a warm-up of as many reads);
//! 2. the same zipfian point reads interleaved with full table scans: cycles of one scan of
//!    the whole table followed by a run of point reads, after a warm-up of point reads.
//!
//! For each, the pool's hit ratio (hits over hits and misses), the pages read from storage per
//! operation (the I/O ledger) and the throughput. In the mix, the scans' pool traffic is
//! counted apart from the point reads', and the first tenth of the point reads after each scan
//! apart again, so the point reads' hit ratio can be set beside the same pool's under YCSB C:
//! the difference is what the scans cost the point reads, largest right after a scan.
//!
//! Under a skewed distribution a small pool already holds the hottest pages, so the hit ratio
//! rises steeply at first and then slowly. Clock sweep approximates LRU and should do about as
//! well on point reads. A scan of a table larger than the pool pushes every page through it:
//! under LRU the scanned pages are the most recent, so the hot set is evicted; under clock
//! sweep a hot page has a usage count of up to 5 and survives until the hand has passed it
//! that many times, so a pool large enough relative to the scan keeps its hot set.
//! PostgreSQL does not rely on that: large scans use a ring of 256 KiB (`ScanRing` in the
//! pager). The engines here do not: their full scans read through a `ReadStream` without a
//! ring, so every scanned page takes a frame of the shared pool.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use rand::SeedableRng;
use rand::rngs::StdRng;
use storelab_pager::buffer_pool::{PolicyKind, USAGE_COUNT_MAX};
use storelab_table::{ScanSpec, StorageConfig};
use storelab_workload::results::{IoSummary, LatencySummary};
use storelab_workload::{Distribution, KeyChooser, PhaseResult, RunConfig, UserTable, Workload};

use super::report::{num, ratio};
use super::{Ctx, Plot, PlotKind, Report, Section, Series, TextTable, Verdict, metrics};
use crate::engines::{EngineKind, open_engine};

/// The engines compared.
const ENGINES: [EngineKind; 2] = [EngineKind::Heap, EngineKind::Clustered];

/// The policies compared.
const POLICIES: [PolicyKind; 2] = [PolicyKind::ClockSweep, PolicyKind::Lru];

/// Pool sizes, in percent of the table's bytes on disk.
const POOL_PERCENTS: [u64; 5] = [2, 5, 15, 40, 100];

/// Full scans in the measured part of the scan mix (each followed by a run of point reads).
const MIX_CYCLES: u64 = 4;

/// The first `1 / EARLY_READS_DIVISOR` of the point reads after each scan are also counted
/// apart: the scan's damage shows there, before the hot set is read back.
const EARLY_READS_DIVISOR: u64 = 10;

fn policy_name(policy: PolicyKind) -> &'static str {
    match policy {
        PolicyKind::ClockSweep => "clock",
        PolicyKind::Lru => "lru",
    }
}

/// One measured point: a pool size and policy on one engine, both workloads.
struct Point {
    engine: EngineKind,
    policy: PolicyKind,
    percent: u64,
    pool_bytes: u64,
    /// YCSB C.
    ycsb: PhaseResult,
    /// The scan mix's point reads and scans apart.
    split: MixSplit,
}

/// The scan mix's figures split between its scans and its point reads.
#[derive(Clone, Copy, Debug, Default)]
struct MixSplit {
    scans: u64,
    scan_hits: u64,
    scan_misses: u64,
    scan_read_bytes: u64,
    scan_elapsed_s: f64,
    reads: u64,
    read_hits: u64,
    read_misses: u64,
    read_read_count: u64,
    read_elapsed_s: f64,
    /// The first reads after each scan (included in the `read_` figures too).
    early_reads: u64,
    early_hits: u64,
    early_misses: u64,
}

impl MixSplit {
    fn read_hit_ratio(&self) -> f64 {
        self.read_hits as f64 / (self.read_hits + self.read_misses).max(1) as f64
    }

    fn early_hit_ratio(&self) -> f64 {
        self.early_hits as f64 / (self.early_hits + self.early_misses).max(1) as f64
    }

    fn scan_hit_ratio(&self) -> f64 {
        self.scan_hits as f64 / (self.scan_hits + self.scan_misses).max(1) as f64
    }

    /// Pages read from storage per point read.
    fn reads_per_read(&self) -> f64 {
        self.read_read_count as f64 / self.reads.max(1) as f64
    }
}

/// The scan mix: `warmup` zipfian point reads, then `MIX_CYCLES` cycles of one full scan and
/// `reads_per_cycle` zipfian point reads. Measured like `storelab_workload::measure` but
/// without `Table::stats` (the clustered engine's walks every page of its trees, which would
/// cost a scan's worth of reads per call), and with the scans' pool traffic and ledger reads
/// counted apart.
fn scan_mix(
    db: &dyn storelab_table::Engine,
    table: &dyn storelab_table::Table,
    records: u64,
    warmup: u64,
    reads_per_cycle: u64,
    seed: u64,
) -> Result<(PhaseResult, MixSplit)> {
    let mut chooser = KeyChooser::new(Distribution::Zipfian);
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..warmup {
        let n = chooser.choose(&mut rng, records, i);
        table.get(&[UserTable::key(n)])?;
    }
    let mut split = MixSplit::default();
    let before = db.stats()?;
    let start = Instant::now();
    for cycle in 0..MIX_CYCLES {
        let s0 = db.stats()?;
        let t = Instant::now();
        storelab_table::Table::scan(table, &ScanSpec::default(), None, &mut |_| true)?;
        split.scan_elapsed_s += t.elapsed().as_secs_f64();
        let s1 = db.stats()?;
        split.scans += 1;
        split.scan_hits += s1.pool_hits - s0.pool_hits;
        split.scan_misses += s1.pool_misses - s0.pool_misses;
        if let (Some(a), Some(b)) = (&s1.ledger, &s0.ledger) {
            split.scan_read_bytes += a.delta(b).total().read_bytes;
        }
        let early = reads_per_cycle / EARLY_READS_DIVISOR;
        let t = Instant::now();
        for i in 0..reads_per_cycle {
            if i == early {
                let se = db.stats()?;
                split.early_reads += early;
                split.early_hits += se.pool_hits - s1.pool_hits;
                split.early_misses += se.pool_misses - s1.pool_misses;
            }
            let n = chooser.choose(&mut rng, records, warmup + cycle * reads_per_cycle + i);
            table.get(&[UserTable::key(n)])?;
        }
        split.read_elapsed_s += t.elapsed().as_secs_f64();
        let s2 = db.stats()?;
        split.reads += reads_per_cycle;
        split.read_hits += s2.pool_hits - s1.pool_hits;
        split.read_misses += s2.pool_misses - s1.pool_misses;
        if let (Some(a), Some(b)) = (&s2.ledger, &s1.ledger) {
            split.read_read_count += a.delta(b).total().read_count;
        }
    }
    let elapsed = start.elapsed();
    let after = db.stats()?;
    let delta = match (&after.ledger, &before.ledger) {
        (Some(a), Some(b)) => a.delta(b),
        _ => Default::default(),
    };
    let io = IoSummary::from_ledger(&delta);
    let hits = after.pool_hits - before.pool_hits;
    let misses = after.pool_misses - before.pool_misses;
    let ops = split.scans + split.reads;
    let latency = BTreeMap::from([
        (
            "scan".to_string(),
            LatencySummary::constant(
                split.scans,
                split.scan_elapsed_s * 1e6 / split.scans.max(1) as f64,
            ),
        ),
        (
            "read".to_string(),
            LatencySummary::constant(
                split.reads,
                split.read_elapsed_s * 1e6 / split.reads.max(1) as f64,
            ),
        ),
    ]);
    let phase = PhaseResult {
        phase: "run".into(),
        workload: "zipfian-reads+full-scans".into(),
        ops,
        rows: ops,
        elapsed_s: elapsed.as_secs_f64(),
        throughput_ops_per_s: ops as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_us: latency,
        wal_bytes: after.wal_bytes - before.wal_bytes,
        user_bytes_written: 0,
        write_amplification: None,
        reads_per_op: io.total.read_count as f64 / ops.max(1) as f64,
        size_on_disk_bytes: 0,
        row_count: records,
        pool_hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        counters: BTreeMap::from([
            ("pool_hits".to_string(), hits),
            ("pool_misses".to_string(), misses),
            ("mix_scan_pool_hits".to_string(), split.scan_hits),
            ("mix_scan_pool_misses".to_string(), split.scan_misses),
            ("mix_read_pool_hits".to_string(), split.read_hits),
            ("mix_read_pool_misses".to_string(), split.read_misses),
            ("mix_read_io_read_count".to_string(), split.read_read_count),
            ("mix_early_read_pool_hits".to_string(), split.early_hits),
            ("mix_early_read_pool_misses".to_string(), split.early_misses),
        ]),
        io,
    };
    Ok((phase, split))
}

/// Runs the experiment.
pub fn run(ctx: &mut Ctx) -> Result<Report> {
    let records = ctx.scaled(50_000, 2_000);
    let ops = ctx.scaled(10_000, 500);
    let reads_per_cycle = ctx.scaled(2_500, 100);
    let data = UserTable::default();
    let workload = Workload::parse("c").map_err(anyhow::Error::msg)?;
    let base = ctx.storage();
    let page_bytes = base.page_size.bytes() as u64;
    let mut points = Vec::new();
    let mut table_bytes = Vec::new();
    for engine in ENGINES {
        let dir = ctx.fresh_dir(&engine.to_string())?;
        // Bulk load with the default pool and buffered files; measured points reopen.
        let (load, bytes) = {
            let db = open_engine(engine, &dir, &base)?;
            let pb = ctx.bar(records, &format!("{engine} load"));
            let load = storelab_workload::load(&*db, &workload, records, data, ctx.seed, &|n| {
                pb.set_position(n)
            })?;
            pb.finish_and_clear();
            let stats = db.open_table(workload.table())?.stats()?;
            (load, stats.file_bytes)
        };
        let bytes: u64 = bytes.values().sum();
        table_bytes.push((engine, bytes));
        let pb = ctx.bar(
            (POLICIES.len() * POOL_PERCENTS.len()) as u64,
            &format!("{engine} pool sweep"),
        );
        // Sizes that the 16-page minimum makes equal to a smaller one (tiny scales) are
        // measured once, at the smaller percentage.
        let pool_bytes_of = |percent: u64| (bytes * percent / 100).max(16 * page_bytes);
        let percents: Vec<u64> = POOL_PERCENTS
            .iter()
            .copied()
            .enumerate()
            .filter(|&(i, pc)| i == 0 || pool_bytes_of(pc) != pool_bytes_of(POOL_PERCENTS[i - 1]))
            .map(|(_, pc)| pc)
            .collect();
        for policy in POLICIES {
            for &percent in &percents {
                pb.set_message(format!("{engine} {} {percent}%", policy_name(policy)));
                let mut config = base.clone();
                config.pool_bytes = pool_bytes_of(percent) as usize;
                config.pool_policy = policy;
                config.direct = true;
                let db = open_engine(engine, &dir, &config)?;
                let run_config = RunConfig {
                    ops,
                    duration_s: None,
                    threads: 1,
                    warmup_ops: ops,
                    seed: ctx.seed,
                };
                let ycsb =
                    storelab_workload::run(&*db, &workload, records, data, &run_config, &|_| {})?;
                let params = [
                    ("records", records.into()),
                    ("pool_percent_of_data", percent.into()),
                    ("measure", "ycsb-c".into()),
                ];
                ctx.record(
                    engine.name(),
                    &params,
                    &config,
                    Some(load.clone()),
                    ycsb.clone(),
                );
                let table = db.open_table(workload.table())?;
                let (mix, split) = scan_mix(
                    &*db,
                    &*table,
                    records,
                    2 * reads_per_cycle,
                    reads_per_cycle,
                    ctx.seed ^ 0x5CA7,
                )?;
                let params = [
                    ("records", records.into()),
                    ("pool_percent_of_data", percent.into()),
                    ("measure", "zipfian-reads+full-scans".into()),
                    ("reads_per_scan", reads_per_cycle.into()),
                ];
                ctx.record(engine.name(), &params, &config, None, mix);
                ctx.verify(&*db)?;
                points.push(Point {
                    engine,
                    policy,
                    percent,
                    pool_bytes: config.pool_bytes as u64,
                    ycsb,
                    split,
                });
                pb.inc(1);
            }
        }
        pb.finish_and_clear();
        ctx.discard(&dir);
    }
    Ok(report(
        &points,
        &table_bytes,
        records,
        ops,
        reads_per_cycle,
        &base,
    ))
}

fn find(points: &[Point], engine: EngineKind, policy: PolicyKind, percent: u64) -> Option<&Point> {
    points
        .iter()
        .find(|p| p.engine == engine && p.policy == policy && p.percent == percent)
}

/// How a difference compares with its error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Above the error.
    Larger,
    /// Within it.
    Tie,
    /// Below minus the error.
    Smaller,
}

fn outcome(difference: f64, error: f64) -> Outcome {
    if difference > error {
        Outcome::Larger
    } else if difference < -error {
        Outcome::Smaller
    } else {
        Outcome::Tie
    }
}

fn pct(v: f64) -> String {
    format!("{}%", num(v * 100.0))
}

/// A difference of two ratios in percentage points.
fn points_of(v: f64) -> String {
    format!("{} points", num(v * 100.0))
}

fn report(
    points: &[Point],
    table_bytes: &[(EngineKind, u64)],
    records: u64,
    ops: u64,
    reads_per_cycle: u64,
    base: &StorageConfig,
) -> Report {
    let page_bytes = base.page_size.bytes() as f64;
    let mib = |b: u64| num(b as f64 / (1 << 20) as f64);
    let hit = |p: &Point| p.ycsb.pool_hit_ratio.unwrap_or(f64::NAN);
    let early_count = reads_per_cycle / EARLY_READS_DIVISOR;

    // YCSB C.
    let mut ycsb_table = TextTable::new(&[
        "engine",
        "policy",
        "pool (% of data)",
        "pool (MiB)",
        "hit ratio",
        "page reads/op",
        "heap-file reads/op",
        "index reads/op",
        "ops/s",
        "p50 (us)",
    ]);
    for p in points {
        ycsb_table.row(vec![
            p.engine.name().into(),
            policy_name(p.policy).into(),
            p.percent.to_string(),
            mib(p.pool_bytes),
            pct(hit(p)),
            num(metrics::reads(&p.ycsb)),
            num(metrics::file_reads(&p.ycsb, ".heap")),
            num(metrics::file_reads(&p.ycsb, ".idx")),
            num(p.ycsb.throughput_ops_per_s),
            num(metrics::p50_us(&p.ycsb)),
        ]);
    }
    let mut hit_series = Vec::new();
    let mut mix_series = Vec::new();
    for engine in ENGINES {
        for policy in POLICIES {
            let pts: Vec<&Point> = points
                .iter()
                .filter(|p| p.engine == engine && p.policy == policy)
                .collect();
            let name = format!("{engine}, {}", policy_name(policy));
            hit_series.push(Series {
                name: name.clone(),
                points: pts
                    .iter()
                    .map(|p| (p.percent as f64, 100.0 * hit(p)))
                    .collect(),
            });
            mix_series.push(Series {
                name,
                points: pts
                    .iter()
                    .map(|p| (p.percent as f64, 100.0 * p.split.early_hit_ratio()))
                    .collect(),
            });
        }
    }
    let hit_plot = Plot {
        file: "hit_ratio_ycsb_c.svg".into(),
        title: "YCSB C: buffer pool hit ratio by pool size".into(),
        x_label: "pool size (% of the table's bytes)".into(),
        y_label: "hit ratio (%)".into(),
        log_y: false,
        kind: PlotKind::Lines {
            series: hit_series,
            log_x: false,
        },
    };

    // The scan mix.
    let mut mix_table = TextTable::new(&[
        "engine",
        "policy",
        "pool (% of data)",
        "YCSB C hit ratio",
        "point-read hit ratio between scans",
        "first reads after a scan",
        "page reads per point read",
        "pages read per scan",
        "scan hit ratio",
        "point reads/s",
        "scan (ms)",
    ]);
    for p in points {
        let s = &p.split;
        mix_table.row(vec![
            p.engine.name().into(),
            policy_name(p.policy).into(),
            p.percent.to_string(),
            pct(hit(p)),
            pct(s.read_hit_ratio()),
            pct(s.early_hit_ratio()),
            num(s.reads_per_read()),
            num(s.scan_read_bytes as f64 / page_bytes / s.scans.max(1) as f64),
            pct(s.scan_hit_ratio()),
            num(s.reads as f64 / s.read_elapsed_s.max(1e-9)),
            num(s.scan_elapsed_s * 1e3 / s.scans.max(1) as f64),
        ]);
    }
    let mix_plot = Plot {
        file: "hit_ratio_after_scans.svg".into(),
        title: format!(
            "Hit ratio of the first {early_count} zipfian point reads after each full scan"
        ),
        x_label: "pool size (% of the table's bytes)".into(),
        y_label: "point-read hit ratio (%)".into(),
        log_y: false,
        kind: PlotKind::Lines {
            series: mix_series,
            log_x: false,
        },
    };

    // Findings and verdict.
    let mut findings = Vec::new();
    let mut held = Vec::new();
    let mut failed = Vec::new();
    let mut tied = Vec::new();
    for engine in ENGINES {
        // The sizes measured on this engine (tiny scales merge the smallest).
        let percents: Vec<u64> = POOL_PERCENTS
            .iter()
            .copied()
            .filter(|&pc| find(points, engine, PolicyKind::ClockSweep, pc).is_some())
            .collect();
        if percents.len() < 3 {
            continue;
        }
        let smallest = percents[0];
        let middle = percents[percents.len() / 2];
        let largest = percents[percents.len() - 1];
        let below: Vec<u64> = percents
            .iter()
            .copied()
            .filter(|&pc| pc < largest)
            .collect();
        let bytes = table_bytes
            .iter()
            .find(|(e, _)| *e == engine)
            .map_or(0, |(_, b)| *b);
        // 1. Steep at first: the hit ratio per percent of pool rises faster from the
        //    smallest pool to the middle one than from the middle one to the largest.
        for policy in POLICIES {
            let (Some(s), Some(m), Some(l)) = (
                find(points, engine, policy, smallest),
                find(points, engine, policy, middle),
                find(points, engine, policy, largest),
            ) else {
                continue;
            };
            let first = (hit(m) - hit(s)) / (middle - smallest) as f64;
            let last = (hit(l) - hit(m)) / (largest - middle) as f64;
            findings.push(format!(
                "{engine}, {}, YCSB C on a {} MiB table: a pool of {smallest}% of it answered \
                 {} of page accesses from memory, {middle}% answered {} and {largest}% {} \
                 ({} page reads per operation at {smallest}%, {} at {largest}%): {} of hit \
                 ratio per percent of pool at first, {} afterwards.",
                policy_name(policy),
                mib(bytes),
                pct(hit(s)),
                pct(hit(m)),
                pct(hit(l)),
                num(metrics::reads(&s.ycsb)),
                num(metrics::reads(&l.ycsb)),
                points_of(first),
                points_of(last),
            ));
            let steep = first > last;
            let claim = format!(
                "{engine}, {}: the hit ratio rises {} per percent of pool from {smallest}% to \
                 {middle}% ({}) than from {middle}% to {largest}% ({})",
                policy_name(policy),
                if steep { "faster" } else { "no faster" },
                points_of(first),
                points_of(last)
            );
            if steep { &mut held } else { &mut failed }.push(claim);
        }
        if engine == EngineKind::Heap {
            let at = |pc| find(points, engine, PolicyKind::ClockSweep, pc);
            if let (Some(s), Some(m)) = (at(smallest), at(middle)) {
                findings.push(format!(
                    "Where a heap point read's misses go (clock sweep): at {smallest}%, {} \
                     reads per operation from the heap file and {} from the primary-key \
                     index; at {middle}%, {} and {}. {}",
                    num(metrics::file_reads(&s.ycsb, ".heap")),
                    num(metrics::file_reads(&s.ycsb, ".idx")),
                    num(metrics::file_reads(&m.ycsb, ".heap")),
                    num(metrics::file_reads(&m.ycsb, ".idx")),
                    if metrics::file_reads(&m.ycsb, ".idx")
                        < 0.5 * metrics::file_reads(&s.ycsb, ".idx")
                    {
                        "The index, a small part of the table that every lookup descends, \
                         comes to stay in the pool; the heap pages of colder rows keep \
                         missing."
                    } else {
                        "The index keeps missing as much as the heap pages do."
                    }
                ));
            }
        }
        // 2. Policies alike on skewed point reads: the largest gap between the two policies
        //    at one size is smaller than the smallest step between adjacent sizes.
        let gaps: Vec<(u64, f64)> = percents
            .iter()
            .filter_map(|&pc| {
                let c = find(points, engine, PolicyKind::ClockSweep, pc)?;
                let l = find(points, engine, PolicyKind::Lru, pc)?;
                Some((pc, hit(l) - hit(c)))
            })
            .collect();
        let steps: Vec<f64> = percents
            .windows(2)
            .filter_map(|w| {
                let a = find(points, engine, PolicyKind::ClockSweep, w[0])?;
                let b = find(points, engine, PolicyKind::ClockSweep, w[1])?;
                Some(hit(b) - hit(a))
            })
            .collect();
        if let (Some(&(gap_at, gap)), Some(step)) = (
            gaps.iter().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())),
            steps.iter().copied().reduce(f64::min),
        ) {
            findings.push(format!(
                "{engine}: LRU's YCSB C hit ratio minus clock sweep's, in points: {}. The \
                 largest gap is {} (at {gap_at}%); the smallest step between adjacent pool \
                 sizes is {} (clock sweep).",
                gaps.iter()
                    .map(|(pc, g)| format!("{} at {pc}%", num(g * 100.0)))
                    .collect::<Vec<_>>()
                    .join(", "),
                points_of(gap.abs()),
                points_of(step),
            ));
            let alike = gap.abs() < step.abs();
            let claim = format!(
                "{engine}: on skewed point reads LRU and clock sweep differ by {} at most, {} \
                 than one step of pool size ({})",
                points_of(gap.abs()),
                if alike { "less" } else { "no less" },
                points_of(step)
            );
            if alike { &mut held } else { &mut failed }.push(claim);
        }
        // 3. Scans flush the pool (LRU): right after a scan the point reads hit less than
        //    under YCSB C; clock sweep keeps more of the hot set than LRU.
        let early_drop = |policy, pc| {
            let p = find(points, engine, policy, pc)?;
            Some(hit(p) - p.split.early_hit_ratio())
        };
        let whole_drop = |policy, pc| {
            let p = find(points, engine, policy, pc)?;
            Some(hit(p) - p.split.read_hit_ratio())
        };
        let describe = |f: &dyn Fn(PolicyKind, u64) -> Option<f64>, policy| {
            below
                .iter()
                .filter_map(|&pc| f(policy, pc).map(|d| format!("{} at {pc}%", num(d * 100.0))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let lru: Vec<f64> = below
            .iter()
            .filter_map(|&pc| early_drop(PolicyKind::Lru, pc))
            .collect();
        let clock: Vec<f64> = below
            .iter()
            .filter_map(|&pc| early_drop(PolicyKind::ClockSweep, pc))
            .collect();
        let whole: Vec<f64> = POLICIES
            .iter()
            .flat_map(|&policy| below.iter().filter_map(move |&pc| whole_drop(policy, pc)))
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let early_mean = (mean(&lru) + mean(&clock)) / 2.0;
        findings.push(format!(
            "{engine}: how far the point reads' hit ratio fell below YCSB C's, in points. \
             Over the first {early_count} reads after each scan: LRU {}; clock sweep {}. Over \
             all {reads_per_cycle} reads between scans: LRU {}; clock sweep {}. {}",
            describe(&early_drop, PolicyKind::Lru),
            describe(&early_drop, PolicyKind::ClockSweep),
            describe(&whole_drop, PolicyKind::Lru),
            describe(&whole_drop, PolicyKind::ClockSweep),
            if early_mean > 2.0 * mean(&whole) {
                "The damage is concentrated right after the scan: the zipfian hot set is \
                 small and is read back within the first reads."
            } else {
                "The damage lasts: the reads after the first ones still hit less than \
                 under YCSB C."
            }
        ));
        // Clock sweep's protection: a hot page's usage count (at most USAGE_COUNT_MAX) is
        // decremented once per pass of the hand, and a scan of `n` pool-fulls makes at least
        // `n` passes.
        let passes: Vec<String> = below
            .iter()
            .filter_map(|&pc| {
                let p = find(points, engine, PolicyKind::ClockSweep, pc)?;
                let frames = p.pool_bytes as f64 / page_bytes;
                let scanned =
                    p.split.scan_read_bytes as f64 / page_bytes / p.split.scans.max(1) as f64;
                Some(format!(
                    "{pc}%: {} pool-fulls, clock sweep {} and LRU {} points below YCSB C",
                    num(scanned / frames),
                    num(early_drop(PolicyKind::ClockSweep, pc)? * 100.0),
                    num(early_drop(PolicyKind::Lru, pc)? * 100.0),
                ))
            })
            .collect();
        findings.push(format!(
            "{engine}: how many pool-fulls of pages each scan read, and the first reads' loss \
             after it: {}. Clock sweep bumps a page's usage count on each access up to \
             {USAGE_COUNT_MAX} and the hand takes one off per pass, and a scan of n pool-fulls \
             makes at least n passes: a scan of fewer than {USAGE_COUNT_MAX} pool-fulls can \
             leave the hot pages in place, a longer one evicts them as LRU does.",
            passes.join("; ")
        ));
        if !lru.is_empty() && lru.len() == clock.len() {
            // The binomial standard error of a hit ratio measured over `n` page accesses: the
            // yardstick for "lower" (differences within two of them count as a tie).
            let se = |ratio: f64, n: u64| (ratio * (1.0 - ratio) / n.max(1) as f64).sqrt();
            let ycsb_se = |p: &Point| {
                let n = metrics::counter(&p.ycsb, "pool_hits")
                    + metrics::counter(&p.ycsb, "pool_misses");
                se(hit(p), n)
            };
            let early_se = |p: &Point| {
                se(
                    p.split.early_hit_ratio(),
                    p.split.early_hits + p.split.early_misses,
                )
            };
            // 3a. LRU: right after a scan, lower than YCSB C at every pool below the table.
            let outcomes: Vec<(u64, Outcome)> = below
                .iter()
                .filter_map(|&pc| {
                    let p = find(points, engine, PolicyKind::Lru, pc)?;
                    let drop = hit(p) - p.split.early_hit_ratio();
                    let err = 2.0 * (ycsb_se(p).powi(2) + early_se(p).powi(2)).sqrt();
                    Some((pc, outcome(drop, err)))
                })
                .collect();
            let text = |o: Outcome| match o {
                Outcome::Larger => "lower",
                Outcome::Tie => "within noise",
                Outcome::Smaller => "higher",
            };
            let claim = format!(
                "{engine}: with LRU, right after a scan the point reads' hit ratio against YCSB \
                 C's was {} (points below: {})",
                outcomes
                    .iter()
                    .map(|(pc, o)| format!("{} at {pc}%", text(*o)))
                    .collect::<Vec<_>>()
                    .join(", "),
                describe(&early_drop, PolicyKind::Lru)
            );
            if outcomes.iter().any(|(_, o)| *o == Outcome::Smaller) {
                failed.push(claim);
            } else if outcomes.iter().all(|(_, o)| *o == Outcome::Larger) {
                held.push(claim);
            } else {
                tied.push(claim);
            }
            // 3b. Clock sweep keeps more of the hot set: its first reads after a scan hit
            //     more than LRU's, on average over the pools below the table (the same
            //     stream of keys for both).
            let pairs: Vec<(f64, f64)> = below
                .iter()
                .filter_map(|&pc| {
                    let c = find(points, engine, PolicyKind::ClockSweep, pc)?;
                    let l = find(points, engine, PolicyKind::Lru, pc)?;
                    Some((
                        c.split.early_hit_ratio() - l.split.early_hit_ratio(),
                        early_se(c).powi(2) + early_se(l).powi(2),
                    ))
                })
                .collect();
            let k = pairs.len().max(1) as f64;
            let diff = pairs.iter().map(|(d, _)| d).sum::<f64>() / k;
            let err = 2.0 * pairs.iter().map(|(_, v)| v).sum::<f64>().sqrt() / k;
            let (lru_mean, clock_mean) = (mean(&lru), mean(&clock));
            let claim = |verdict: &str| {
                format!(
                    "{engine}: right after a scan clock sweep's point reads hit {} below YCSB \
                     C on average over those pools, LRU's {}: clock sweep {verdict}",
                    points_of(clock_mean),
                    points_of(lru_mean),
                )
            };
            match outcome(diff, err) {
                Outcome::Larger => held.push(claim("is the more scan-resistant")),
                Outcome::Smaller => failed.push(claim("is the less scan-resistant")),
                Outcome::Tie => tied.push(format!(
                    "{} (a difference within twice its standard error, {})",
                    claim("is not clearly more scan-resistant"),
                    points_of(err)
                )),
            }
        }
        if let Some(p) = find(points, engine, PolicyKind::Lru, smallest) {
            let s = &p.split;
            findings.push(format!(
                "{engine}: each scan read {} pages from storage with a pool hit ratio of {} \
                 (LRU, {smallest}%): the engines' full scans read through a read stream \
                 without a scan ring, so every page of the table passes through the shared \
                 pool and takes a frame from the point reads' hot set.",
                num(s.scan_read_bytes as f64 / page_bytes / s.scans.max(1) as f64),
                pct(s.scan_hit_ratio()),
            ));
        }
    }
    // The smallest size is always measured, and the largest is never merged into another.
    let (smallest, largest) = (POOL_PERCENTS[0], POOL_PERCENTS[POOL_PERCENTS.len() - 1]);
    if let (Some(c), Some(l)) = (
        find(points, EngineKind::Heap, PolicyKind::ClockSweep, largest),
        find(points, EngineKind::Heap, PolicyKind::Lru, largest),
    ) {
        findings.push(format!(
            "With a pool as large as the table ({largest}%) the scans found {} (clock sweep) \
             and {} (LRU) of the heap's pages cached, and the point reads right after them \
             hit {} and {}.",
            pct(c.split.scan_hit_ratio()),
            pct(l.split.scan_hit_ratio()),
            pct(c.split.early_hit_ratio()),
            pct(l.split.early_hit_ratio()),
        ));
    }
    if let (Some(c), Some(l), Some(full)) = (
        find(points, EngineKind::Heap, PolicyKind::ClockSweep, smallest),
        find(points, EngineKind::Heap, PolicyKind::Lru, smallest),
        find(points, EngineKind::Heap, PolicyKind::ClockSweep, largest),
    ) {
        let (ct, lt) = (c.ycsb.throughput_ops_per_s, l.ycsb.throughput_ops_per_s);
        findings.push(format!(
            "Throughput follows the misses: heap, YCSB C, clock sweep ran at {} ops/s with a \
             {smallest}% pool and {} with {largest}% ({}); at {smallest}% LRU ran at {} \
             ops/s{}.",
            num(ct),
            num(full.ycsb.throughput_ops_per_s),
            ratio(full.ycsb.throughput_ops_per_s, ct),
            num(lt),
            if lt < ct && (hit(l) - hit(c)).abs() < 0.01 {
                ", slower at about the same hit ratio: exact LRU looks for its victim among \
                 all frames on every miss, clock sweep only moves its hand"
            } else {
                ""
            },
        ));
    }
    let list = |label: &str, v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!("{label}: {}. ", v.join("; "))
        }
    };
    let text = format!(
        "{}{}{}",
        list("Held", &held),
        list("Did not hold", &failed),
        list("Undecided (differences within the sampling error)", &tied)
    )
    .trim_end()
    .to_string();
    let verdict = if !held.is_empty() && failed.is_empty() && tied.is_empty() {
        Verdict::Agrees(text)
    } else if held.is_empty() && tied.is_empty() && !failed.is_empty() {
        Verdict::Contradicts(text)
    } else {
        Verdict::Mixed(text)
    };

    let sizes = table_bytes
        .iter()
        .map(|(e, b)| format!("{e} {} MiB", mib(*b)))
        .collect::<Vec<_>>()
        .join(", ");
    Report {
        setup: vec![
            format!(
                "YCSB's usertable (10 fields of 100 bytes), {records} records bulk-loaded into \
                 a heap and a clustered B+tree ({sizes} on disk, every file of the table)."
            ),
            format!(
                "Each point reopens the engine with a pool of {} percent of that size (at \
                 least 16 pages; a size that this minimum makes equal to a smaller one is \
                 measured once) and the policy (clock sweep or exact LRU), with O_DIRECT page \
                 files so that the pool is the only cache (buffered files would turn misses \
                 into copies from the OS page cache).",
                POOL_PERCENTS
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "YCSB C: {ops} zipfian reads (scrambled zipfian, theta 0.99) after a warm-up \
                 of {ops}, one thread."
            ),
            format!(
                "Scan mix, on the same open engine afterwards: {} zipfian reads of warm-up, \
                 then {MIX_CYCLES} cycles of one full scan of the table followed by \
                 {reads_per_cycle} zipfian reads; the scans', the point reads' and the first \
                 {early_count} point reads after each scan's pool hits, misses and ledger \
                 reads are counted apart.",
                2 * reads_per_cycle
            ),
            "Hit ratio: pool hits over hits and misses (a page a read stream finds cached \
             counts as a hit, one it must read as a miss)."
                .into(),
        ],
        expected: "Under a skewed (zipfian) distribution the hit ratio grows steeply at first \
                   and then slowly, because a small pool already holds the hot set. LRU and \
                   clock sweep (PostgreSQL's approximation of it) perform about the same on \
                   skewed point reads. A sequential scan larger than the pool flushes an LRU \
                   pool, so the point reads after it miss until the hot set is back; clock \
                   sweep's usage counts protect hot pages for a few passes of the hand, and \
                   PostgreSQL confines large scans to a 256 KiB ring. The engines here scan \
                   without a ring (the pager has `ScanRing`, but the heap's sequential scan \
                   and the clustered leaf reader do not use it), so the scans compete for \
                   the whole pool."
            .into(),
        sections: vec![
            Section {
                heading: "YCSB C: hit ratio by pool size and policy".into(),
                text: "Page reads from storage per operation from the I/O ledger, split by \
                       file for the heap (the clustered engine has only index files)."
                    .into(),
                table: Some(ycsb_table),
                plot: Some(hit_plot),
            },
            Section {
                heading: "Zipfian reads between full scans".into(),
                text: format!(
                    "The point reads' hit ratio between scans, and over the first \
                     {early_count} reads after each scan, beside the same pool's under YCSB C; \
                     the scans' own pages read and hit ratio."
                ),
                table: Some(mix_table),
                plot: Some(mix_plot),
            },
        ],
        findings,
        verdict,
    }
}
