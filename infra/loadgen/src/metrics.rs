//! Latency histograms (HdrHistogram, microseconds, 3 significant figures) and what /proc says of
//! the server's processes: CPU seconds (utime + stime) and resident memory.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

/// A histogram shared between connection tasks.
#[derive(Clone)]
pub struct Latency {
    inner: Arc<Mutex<Histogram<u64>>>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        // 1 µs .. 1 hour; `new_with_bounds` fails only for bounds that are out of order.
        let h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid, constant bounds");
        Self {
            inner: Arc::new(Mutex::new(h)),
        }
    }

    pub fn record(&self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 3_600_000_000);
        if let Ok(mut h) = self.inner.lock() {
            let _ = h.record(us);
        }
    }

    /// Adds every value recorded in `other`.
    pub fn add(&self, other: &Latency) {
        let theirs = other.snapshot();
        if let Ok(mut h) = self.inner.lock() {
            let _ = h.add(theirs);
        }
    }

    pub fn snapshot(&self) -> Histogram<u64> {
        self.inner
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub fn summary(&self) -> Summary {
        Summary::of(&self.snapshot())
    }
}

/// Milliseconds at the usual quantiles.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
        }
    }
}

/// The points of a percentile curve, for the plot: (quantile, milliseconds).
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    const QS: [f64; 14] = [
        0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999, 1.0,
    ];
    QS.iter()
        .map(|&q| (q, h.value_at_quantile(q) as f64 / 1000.0))
        .collect()
}

/// One server process to watch, named for the report (`gateway-1=1234` or just `1234`).
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    pub pid: u32,
}

impl std::str::FromStr for Watched {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (name, pid) = match s.split_once('=') {
            Some((n, p)) => (n.to_string(), p),
            None => (format!("pid-{s}"), s),
        };
        let pid = pid
            .trim()
            .parse()
            .map_err(|_| anyhow!("{s}: not NAME=PID or PID"))?;
        Ok(Self { name, pid })
    }
}

/// What one process had used at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub rss_kib: u64,
}

fn clock_ticks() -> f64 {
    // Linux reports /proc/<pid>/stat times in USER_HZ, 100 on every mainstream architecture.
    100.0
}

pub fn usage(pid: u32) -> Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("/proc/{pid}/stat is malformed"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| -> f64 { fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0.0) };
    let cpu_seconds = (tick(11) + tick(12)) / clock_ticks();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Ok(Usage {
        cpu_seconds,
        rss_kib,
    })
}

/// Reads every watched process at the start and the end of a phase.
#[derive(Clone)]
pub struct Processes {
    pub watched: Vec<Watched>,
}

#[derive(Debug, Clone)]
pub struct Sample {
    at: Vec<Usage>,
    /// CPU seconds the whole machine had been busy (every process: databases, brokers, this
    /// generator), from /proc/stat.
    machine: f64,
    /// CPU seconds this generator had used.
    generator: f64,
}

/// Busy CPU seconds of the whole machine since boot: user, nice, system, irq, softirq and steal
/// time of /proc/stat's `cpu` line (idle and iowait left out).
pub fn machine_busy_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    machine_busy_of(&stat)
}

fn machine_busy_of(stat: &str) -> Result<f64> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("/proc/stat has no cpu line"))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
    // user nice system idle iowait irq softirq steal
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    Ok(busy / clock_ticks())
}

impl Sample {
    /// RSS of the `i`-th watched process.
    pub fn rss_kib(&self, i: usize) -> u64 {
        self.at.get(i).map_or(0, |u| u.rss_kib)
    }
}

impl Processes {
    pub fn sample(&self) -> Result<Sample> {
        Ok(Sample {
            at: self
                .watched
                .iter()
                .map(|w| usage(w.pid))
                .collect::<Result<_>>()?,
            machine: machine_busy_seconds()?,
            generator: usage(std::process::id())?.cpu_seconds,
        })
    }

    /// CPU seconds and RSS change per process between two samples, and per `per` units of work
    /// (messages, deliveries, sockets) when `per` is given.
    pub fn between(&self, a: &Sample, b: &Sample, work: Option<(&str, u64)>) -> Value {
        let mut total = 0.0;
        let mut rows = Vec::new();
        for (i, w) in self.watched.iter().enumerate() {
            let (ua, ub) = (a.at[i], b.at[i]);
            let cpu = ub.cpu_seconds - ua.cpu_seconds;
            total += cpu;
            rows.push(json!({
                "name": w.name, "pid": w.pid,
                "cpu_seconds": round3(cpu),
                "rss_before_kib": ua.rss_kib, "rss_after_kib": ub.rss_kib,
            }));
        }
        let machine = b.machine - a.machine;
        let generator = b.generator - a.generator;
        let mut v = json!({
            "processes": rows,
            "cpu_seconds": round3(total),
            "machine_cpu_seconds": round3(machine),
            "generator_cpu_seconds": round3(generator),
        });
        if let Some((unit, n)) = work {
            if n > 0 {
                let per = |x: f64| json!(round3(x * 1000.0 / n as f64));
                v[format!("cpu_seconds_per_1000_{unit}")] = per(total);
                // Everything but the generator: the watched processes and what they use that is
                // not watched (PostgreSQL's backends, NATS, the kernel's work for them).
                v[format!("machine_less_generator_cpu_seconds_per_1000_{unit}")] =
                    per(machine - generator);
            }
        }
        v
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_the_histogram() {
        let l = Latency::new();
        for i in 1..=1000u64 {
            l.record(Duration::from_micros(i * 10));
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 5.0).abs() < 0.01, "{s:?}");
        assert!((s.max_ms - 10.0).abs() < 0.01, "{s:?}");
        assert_eq!(curve(&l.snapshot()).len(), 14);
    }

    #[test]
    fn machine_busy_time_leaves_idle_and_iowait_out() {
        let stat = "cpu  100 20 30 4000 500 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        // (100 + 20 + 30 + 6 + 7 + 8) ticks of 1/100 s
        assert!((super::machine_busy_of(stat).unwrap() - 1.71).abs() < 1e-9);
        assert!(super::machine_busy_of("intr 1 2 3").is_err());
        assert!(super::machine_busy_seconds().unwrap() > 0.0);
    }

    #[test]
    fn our_own_process_is_read_from_proc() {
        let u = usage(std::process::id()).unwrap();
        assert!(u.rss_kib > 0);
        assert!("gateway-1=42".parse::<Watched>().unwrap().pid == 42);
        assert!("x=y".parse::<Watched>().is_err());
    }
}
