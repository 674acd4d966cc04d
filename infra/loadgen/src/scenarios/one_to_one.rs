//! 1:1 at a fixed arrival rate, stepped up: P pairs, each sender in a personal chat with its
//! receiver; sends are issued on a schedule (open loop, not a flood) and every latency is measured
//! from the moment the send was due, so a stalled server cannot hide its queue (no coordinated
//! omission). A step passes when every send is acknowledged with success, every acknowledged message
//! reaches its receiver, and p99 acknowledgement latency stays within the limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};

use super::{field, succeeded, Outcome};
use crate::client::{EventSink, Socket};
use crate::ctx::{quiet, Ctx};
use crate::metrics::{round3, Latency};
use crate::progress;

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct OneToOneArgs {
    /// Sender/receiver pairs (each with its own personal chat).
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Rates to run, messages/s, in order (overrides --start/--step/--max).
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<u64>,
    /// First rate, messages/s.
    #[arg(long, default_value_t = 1000)]
    pub start: u64,
    /// Added after every passing step.
    #[arg(long, default_value_t = 1000)]
    pub step: u64,
    /// Highest rate tried.
    #[arg(long, default_value_t = 100_000)]
    pub max: u64,
    /// Seconds per step.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// p99 acknowledgement latency a step may reach and still pass, ms.
    #[arg(long, default_value_t = 50.0)]
    pub p99_limit_ms: f64,
    /// Run every rate even after one fails.
    #[arg(long)]
    pub keep_going: bool,
    /// Receivers acknowledge like a modern client: each message received is answered with
    /// `mark-delivered` and a `read-personal-message` up to it (docs/api.md, "Receipts").
    #[arg(long)]
    pub receipts: bool,
}

#[derive(Default)]
struct Step {
    acked: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
    ack: Latency,
    e2e: Latency,
}

/// Content of a load message: `lg <step> <seq> <due µs since the run's start>`.
fn parse_content(c: &str) -> Option<(usize, u64)> {
    let mut parts = c.split(' ');
    (parts.next()? == "lg").then_some(())?;
    let step = parts.next()?.parse().ok()?;
    let _seq: u64 = parts.next()?.parse().ok()?;
    Some((step, parts.next()?.parse().ok()?))
}

pub async fn run(ctx: &Ctx, args: &OneToOneArgs) -> Result<Outcome> {
    if args.pairs == 0 || args.seconds == 0 {
        bail!("--pairs and --seconds must be at least 1");
    }
    let rates: Vec<u64> = if args.rates.is_empty() {
        (0..)
            .map(|i| args.start + i * args.step)
            .take_while(|r| *r <= args.max)
            .take(1000)
            .collect()
    } else {
        args.rates.clone()
    };
    if rates.is_empty() || rates.contains(&0) {
        bail!("no rates to run");
    }
    let steps: Arc<Vec<Step>> = Arc::new((0..rates.len()).map(|_| Step::default()).collect());
    let t0 = Instant::now();

    let accounts = ctx.accounts(2 * args.pairs).await?;
    // Each receiver's own socket, for its receipts (known once connected).
    let handles: Arc<Vec<OnceLock<Socket>>> =
        Arc::new((0..2 * args.pairs).map(|_| OnceLock::new()).collect());
    let receipts = args.receipts;
    let receiver_sink = |i: usize| -> EventSink {
        let steps = steps.clone();
        let handles = handles.clone();
        Arc::new(move |event, data, at| {
            if event != "receive-personal-message" {
                return;
            }
            let Some((step, due_us)) = field(data, "Content").as_deref().and_then(parse_content)
            else {
                return;
            };
            if let Some(s) = steps.get(step) {
                s.received.fetch_add(1, Ordering::Relaxed);
                s.e2e
                    .record(at.saturating_duration_since(t0 + Duration::from_micros(due_us)));
            }
            if receipts {
                let (Some(socket), Some(chat), Some(id)) = (
                    handles.get(i).and_then(OnceLock::get),
                    field(data, "ChatId"),
                    field(data, "MessageId"),
                ) else {
                    return;
                };
                let up_to = json!({"ChatId": chat, "UpTo": id});
                socket.emit("mark-delivered", &up_to);
                socket.emit("read-personal-message", &up_to);
            }
        })
    };
    // Sockets 2i (sender) and 2i+1 (receiver), so with two servers every pair spans both.
    let fleet = ctx
        .connect_many(
            0..2 * args.pairs,
            &accounts,
            |i| i,
            |i| {
                if i % 2 == 1 {
                    receiver_sink(i)
                } else {
                    quiet()
                }
            },
            "connecting",
        )
        .await;
    fleet.require_all("sockets")?;
    let sockets: Vec<Socket> = fleet.sockets.into_iter().flatten().collect();
    for (slot, socket) in handles.iter().zip(&sockets) {
        let _ = slot.set(socket.clone());
    }
    let chats: Vec<String> = stream::iter(0..args.pairs)
        .map(|p| {
            let sender = &sockets[2 * p];
            let receiver = &accounts[2 * p + 1];
            async move {
                sender
                    .request_id(
                        "create-personal-chat",
                        &json!({"Receiver": receiver.user_id}),
                        "create-personal-chat-creator",
                        "ChatId",
                        ctx.timeout,
                    )
                    .await
            }
        })
        .buffered(16)
        .try_collect()
        .await?;

    let mut rows = Vec::new();
    let mut latencies = Vec::new();
    let mut best: Option<(u64, f64)> = None;
    let run_start = ctx.procs.sample()?;
    let mut total_acked = 0u64;
    for (si, &rate) in rates.iter().enumerate() {
        let step = &steps[si];
        let n = rate * args.seconds;
        let bar = progress::bar(n, &format!("{rate}/s"));
        let before = ctx.procs.sample()?;
        let start = Instant::now();
        let mut k: u64 = 0;
        while k < n {
            let now = Instant::now();
            while k < n {
                let due = start + Duration::from_nanos(k * 1_000_000_000 / rate);
                if due > now {
                    break;
                }
                let p = (k % args.pairs as u64) as usize;
                let due_us = due.duration_since(t0).as_micros() as u64;
                let steps = steps.clone();
                sockets[2 * p].emit_with_ack(
                    "send-personal-message",
                    &json!({"ChatId": chats[p], "Content": format!("lg {si} {k} {due_us}")}),
                    Box::new(move |ack, at| {
                        let s = &steps[si];
                        if succeeded(ack) {
                            s.acked.fetch_add(1, Ordering::Relaxed);
                            s.ack.record(at.saturating_duration_since(due));
                        } else {
                            s.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }),
                );
                k += 1;
            }
            bar.set_position(k);
            if k < n {
                let next = start + Duration::from_nanos(k * 1_000_000_000 / rate);
                tokio::time::sleep_until(next.into()).await;
            }
        }
        let sent_in = start.elapsed();
        bar.finish_and_clear();
        // Every answer, then every delivery (bounded waits).
        let answered = || step.acked.load(Ordering::Relaxed) + step.failed.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(15);
        while answered() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let acked_in = start.elapsed();
        let deadline = Instant::now() + Duration::from_secs(15);
        while step.received.load(Ordering::Relaxed) < step.acked.load(Ordering::Relaxed)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let after = ctx.procs.sample()?;
        let acked = step.acked.load(Ordering::Relaxed);
        let failed = step.failed.load(Ordering::Relaxed);
        let received = step.received.load(Ordering::Relaxed);
        let unanswered = n - answered().min(n);
        let lost = acked.saturating_sub(received);
        let ack = step.ack.summary();
        let e2e = step.e2e.summary();
        let pass = failed == 0 && unanswered == 0 && lost == 0 && ack.p99_ms <= args.p99_limit_ms;
        let achieved = acked as f64 / acked_in.as_secs_f64().max(sent_in.as_secs_f64());
        let server = ctx
            .procs
            .between(&before, &after, Some(("messages", acked)));
        total_acked += acked;
        rows.push(json!({
            "rate": rate, "sent": n, "acked": acked, "failed": failed, "unanswered": unanswered,
            "received": received, "lost": lost,
            "acked_per_s": round3(achieved),
            "ack_p50_ms": ack.p50_ms, "ack_p99_ms": ack.p99_ms, "ack_p999_ms": ack.p999_ms, "ack_max_ms": ack.max_ms,
            "e2e_p50_ms": e2e.p50_ms, "e2e_p99_ms": e2e.p99_ms, "e2e_max_ms": e2e.max_ms,
            "server_cpu_s_per_1000": server.get("cpu_seconds_per_1000_messages").cloned().unwrap_or(Value::Null),
            "machine_less_generator_cpu_s_per_1000": server.get("machine_less_generator_cpu_seconds_per_1000_messages").cloned().unwrap_or(Value::Null),
            "pass": pass,
        }));
        latencies.push((format!("ack @ {rate}/s"), step.ack.snapshot()));
        if pass {
            best = Some((rate, achieved));
        }
        eprintln!(
            "loadgen: {rate}/s: acked {acked}/{n}, failed {failed}, lost {lost}, ack p50 {} p99 {} ms, e2e p99 {} ms → {}",
            ack.p50_ms, ack.p99_ms, e2e.p99_ms, if pass { "pass" } else { "FAIL" }
        );
        if !pass && !args.keep_going {
            break;
        }
        if lost > 0 || unanswered > 0 {
            // Let the stragglers drain so they do not count against the next step.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    // The send→receive curve of the best step.
    if let Some((rate, _)) = best {
        if let Some(i) = rates.iter().position(|r| *r == rate) {
            latencies.push((format!("send→receive @ {rate}/s"), steps[i].e2e.snapshot()));
        }
    }
    let run_end = ctx.procs.sample()?;
    for s in &sockets {
        s.close();
    }
    Ok(Outcome {
        params: serde_json::to_value(args)?,
        results: json!({
            "pairs": args.pairs,
            "receipts": args.receipts,
            "highest_passing_rate": best.map(|b| b.0),
            "highest_passing_acked_per_s": best.map(|b| round3(b.1)),
            "p99_limit_ms": args.p99_limit_ms,
            "steps": rows,
        }),
        server: ctx
            .procs
            .between(&run_start, &run_end, Some(("messages", total_acked))),
        latencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_contents_round_trip() {
        assert_eq!(parse_content("lg 3 17 123456"), Some((3, 123456)));
        assert_eq!(parse_content("hello"), None);
        assert_eq!(parse_content("lg x 1 2"), None);
    }
}
