//! A run's report: JSON for machines, a Markdown table for people, and an SVG plot of every latency
//! distribution of the run (latency against percentile, HdrHistogram style).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde_json::{json, Map, Value};

use crate::metrics::{curve, Summary};

pub struct Report {
    pub scenario: &'static str,
    pub started: DateTime<Utc>,
    pub command: String,
    pub targets: Vec<String>,
    pub params: Value,
    pub results: Value,
    pub server: Value,
    pub latencies: Vec<(String, Histogram<u64>)>,
}

/// The machine the run was made on, from /proc.
pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": kernel.trim(),
    })
}

impl Report {
    pub fn to_json(&self) -> Value {
        let latencies: Map<String, Value> = self
            .latencies
            .iter()
            .map(|(n, h)| (n.clone(), json!(Summary::of(h))))
            .collect();
        json!({
            "scenario": self.scenario,
            "started": self.started.to_rfc3339(),
            "command": self.command,
            "targets": self.targets,
            "machine": machine(),
            "params": self.params,
            "results": self.results,
            "latency_ms": latencies,
            "server": self.server,
        })
    }

    pub fn to_markdown(&self, plot: Option<&str>) -> String {
        let mut md = String::new();
        let m = machine();
        let _ = writeln!(
            md,
            "### {} — {}\n",
            self.scenario,
            self.started.format("%Y-%m-%d %H:%M UTC")
        );
        let _ = writeln!(md, "`{}`\n", self.command);
        let _ = writeln!(
            md,
            "Target {}; {} CPUs ({}), {} GiB, Linux {}.\n",
            self.targets.join(", "),
            m["cpus"],
            m["cpu_model"].as_str().unwrap_or(""),
            m["memory_gib"],
            m["kernel"].as_str().unwrap_or("")
        );
        md.push_str(&table_of_object(&self.results));
        if !self.latencies.is_empty() {
            md.push_str("\n| latency | count | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---|---|---|---|---|\n");
            for (name, h) in &self.latencies {
                let s = Summary::of(h);
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {} | {} | {} | {} |",
                    s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms
                );
            }
        }
        if let Some(rows) = self.server.get("processes").and_then(Value::as_array) {
            if !rows.is_empty() {
                md.push_str("\n| server process | CPU s | RSS before MiB | RSS after MiB |\n|---|---|---|---|\n");
                for r in rows {
                    let mib = |k: &str| {
                        r[k].as_u64()
                            .map_or(0.0, |v| (v as f64 / 102.4).round() / 10.0)
                    };
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} |",
                        r["name"].as_str().unwrap_or(""),
                        r["cpu_seconds"],
                        mib("rss_before_kib"),
                        mib("rss_after_kib")
                    );
                }
                for (k, v) in self.server.as_object().into_iter().flatten() {
                    if k != "processes" {
                        let _ = writeln!(md, "\n{k}: {v}");
                    }
                }
            }
        }
        if let Some(p) = plot {
            let _ = writeln!(md, "\n![latency]({p})");
        }
        md
    }

    /// Writes `<dir>/<name>.json`, `.md` and `.svg`; returns the Markdown path.
    pub fn write(&self, dir: &Path, name: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let svg = dir.join(format!("{name}.svg"));
        let plotted = !self.latencies.is_empty() && self.plot(&svg).is_ok();
        let svg_name = format!("{name}.svg");
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(&self.to_json())?,
        )?;
        let md = dir.join(format!("{name}.md"));
        std::fs::write(&md, self.to_markdown(plotted.then_some(svg_name.as_str())))?;
        Ok(md)
    }

    fn plot(&self, path: &Path) -> Result<()> {
        // x: "nines" (0 = p0, 1 = p90, 2 = p99, 3 = p99.9 …), y: milliseconds on a log scale.
        let nines = |q: f64| {
            if q >= 1.0 {
                5.0
            } else {
                (-(1.0 - q).log10()).min(5.0)
            }
        };
        let series: Vec<(String, Vec<(f64, f64)>)> = self
            .latencies
            .iter()
            .map(|(n, h)| {
                let points = curve(h)
                    .into_iter()
                    .map(|(q, ms)| (nines(q), ms.max(0.001)))
                    .collect();
                (n.clone(), points)
            })
            .collect();
        let y_max = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
            .fold(1.0f64, f64::max)
            * 1.5;
        let y_min = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
            .fold(f64::MAX, f64::min)
            .clamp(0.001, 1.0)
            / 1.5;
        let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: latency by percentile", self.scenario),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..5f64, (y_min..y_max).log_scale())?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_desc("percentile")
            .y_desc("ms")
            .x_label_formatter(&|x| match x.round() as i64 {
                0 => "p0".into(),
                1 => "p90".into(),
                2 => "p99".into(),
                3 => "p99.9".into(),
                4 => "p99.99".into(),
                _ => "max".into(),
            })
            .draw()?;
        for (i, (name, points)) in series.into_iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        root.present()?;
        Ok(())
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// Scalars as a two-column table; arrays of objects as tables of their own.
fn table_of_object(v: &Value) -> String {
    let mut md = String::new();
    let Some(obj) = v.as_object() else {
        return md;
    };
    let scalars: Vec<(&String, &Value)> = obj
        .iter()
        .filter(|(_, v)| !v.is_array() && !v.is_object())
        .collect();
    if !scalars.is_empty() {
        md.push_str("| result | value |\n|---|---|\n");
        for (k, v) in scalars {
            let _ = writeln!(md, "| {k} | {} |", cell(v));
        }
    }
    for (k, v) in obj {
        if let Some(rows) = v
            .as_array()
            .filter(|r| r.iter().all(Value::is_object) && !r.is_empty())
        {
            let keys: Vec<&String> = rows[0]
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            let _ = writeln!(md, "\n{k}:\n");
            let _ = writeln!(
                md,
                "| {} |",
                keys.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            let _ = writeln!(md, "|{}", "---|".repeat(keys.len()));
            for r in rows {
                let cells: Vec<String> = keys.iter().map(|k| cell(&r[k.as_str()])).collect();
                let _ = writeln!(md, "| {} |", cells.join(" | "));
            }
        } else if let Some(inner) = v.as_object() {
            let _ = writeln!(md, "\n{k}:\n");
            md.push_str(&table_of_object(&Value::Object(inner.clone())));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_hold_scalars_and_rows() {
        let md = table_of_object(
            &json!({"rate": 5, "steps": [{"a": 1, "b": "x"}, {"a": 2, "b": null}]}),
        );
        assert!(md.contains("| rate | 5 |"), "{md}");
        assert!(md.contains("| a | b |"), "{md}");
        assert!(md.contains("| 2 | — |"), "{md}");
    }

    #[test]
    fn a_report_writes_json_markdown_and_a_plot() {
        let dir = std::env::temp_dir().join(format!("loadgen-report-{}", std::process::id()));
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in [900u64, 1_000, 1_200, 5_000, 40_000] {
            h.record(v).unwrap();
        }
        let r = Report {
            scenario: "idle",
            started: Utc::now(),
            command: "loadgen idle".into(),
            targets: vec!["http://127.0.0.1:3000".into()],
            params: json!({"sockets": 5}),
            results: json!({"connected": 5}),
            server: json!({"processes": [], "cpu_seconds": 0.0}),
            latencies: vec![("connect".into(), h)],
        };
        let md = r.write(&dir, "idle-test").unwrap();
        let text = std::fs::read_to_string(md).unwrap();
        assert!(text.contains("| connected | 5 |") && text.contains("![latency](idle-test.svg)"));
        let svg = std::fs::read_to_string(dir.join("idle-test.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("connect"));
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("idle-test.json")).unwrap())
                .unwrap();
        assert_eq!(json["latency_ms"]["connect"]["count"], 5);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
