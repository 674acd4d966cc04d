//! Group fan-out: one group of G members, all online (one socket each). First single messages, one
//! at a time: the time from the send until the last member has it. Then, with --rate, a steady
//! stream: deliveries per second and drops (deliveries expected but not made).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use clap::Args;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};

use super::{field, succeeded, Outcome};
use crate::client::EventSink;
use crate::ctx::{quiet, Ctx};
use crate::metrics::{round3, Latency};
use crate::progress;

/// Participants a group may be created with in one request (the protocol leaves it to the server;
/// ours takes 256); the rest are added one by one.
const CREATE_WITH: usize = 200;

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct FanoutArgs {
    /// Members of the group, the admin (the sender) included.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Single messages, sent one after another once the previous one reached everybody.
    #[arg(long, default_value_t = 5)]
    pub messages: u64,
    /// Then a steady stream at this many messages/s (0: none).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds of the steady stream.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

struct Tally {
    /// Deliveries per message (index = message number).
    counts: Vec<AtomicU64>,
    /// Latest delivery per message, µs since t0.
    last_us: Vec<AtomicU64>,
    delivery: Latency,
    steady: Latency,
    steady_total: AtomicU64,
    steady_last_us: AtomicU64,
}

fn parse_content(c: &str) -> Option<(u64, u64)> {
    let mut parts = c.split(' ');
    (parts.next()? == "fo").then_some(())?;
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

pub async fn run(ctx: &Ctx, args: &FanoutArgs) -> Result<Outcome> {
    if args.members < 2 {
        bail!("--members must be at least 2");
    }
    let others = (args.members - 1) as u64;
    let total_messages = args.messages + args.rate * args.seconds;
    let singles = args.messages as usize;
    let tally = Arc::new(Tally {
        counts: (0..singles).map(|_| AtomicU64::new(0)).collect(),
        last_us: (0..singles).map(|_| AtomicU64::new(0)).collect(),
        delivery: Latency::new(),
        steady: Latency::new(),
        steady_total: AtomicU64::new(0),
        steady_last_us: AtomicU64::new(0),
    });
    let t0 = Instant::now();
    let accounts = ctx.accounts(args.members).await?;

    // The admin creates the group and adds everybody, before the members connect.
    let admin_fleet = ctx
        .connect_many(0..1, &accounts, |_| 0, |_| quiet(), "admin")
        .await;
    let admin = admin_fleet
        .sockets
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| {
            anyhow!(
                "the admin did not connect: {}",
                admin_fleet.first_errors.join(" | ")
            )
        })?;
    let first: Vec<&str> = accounts[1..]
        .iter()
        .take(CREATE_WITH)
        .map(|a| a.user_id.as_str())
        .collect();
    let group = admin
        .request_id(
            "create-group-chat",
            &json!({"Name": "fan-out", "Description": "loadgen", "Participants": first}),
            "create-group-chat-creator",
            "GroupId",
            ctx.timeout,
        )
        .await?;
    let rest = &accounts[(1 + CREATE_WITH).min(accounts.len())..];
    let bar = progress::bar(rest.len() as u64, "adding members");
    let setup_started = Instant::now();
    stream::iter(rest)
        .map(|a| {
            let admin = &admin;
            let group = &group;
            let bar = &bar;
            async move {
                admin
                    .request(
                        "add-member",
                        &json!({"GroupId": group, "Member": a.user_id}),
                        "add-member-success",
                        Some(&a.user_id),
                        ctx.timeout,
                    )
                    .await?;
                bar.inc(1);
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;
    bar.finish_and_clear();
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    let sink = |_: usize| -> EventSink {
        let tally = tally.clone();
        Arc::new(move |event, data, at| {
            if event != "receive-group-message" {
                return;
            }
            let Some((k, due_us)) = field(data, "Content").as_deref().and_then(parse_content)
            else {
                return;
            };
            let now_us = at.duration_since(t0).as_micros() as u64;
            let latency = at.saturating_duration_since(t0 + Duration::from_micros(due_us));
            if let Some(c) = tally.counts.get(k as usize) {
                c.fetch_add(1, Ordering::Relaxed);
                tally.last_us[k as usize].fetch_max(now_us, Ordering::Relaxed);
                tally.delivery.record(latency);
            } else {
                tally.steady_total.fetch_add(1, Ordering::Relaxed);
                tally.steady_last_us.fetch_max(now_us, Ordering::Relaxed);
                tally.steady.record(latency);
            }
        })
    };
    let members = ctx
        .connect_many(1..args.members, &accounts, |i| i, sink, "members online")
        .await;
    members.require_all("members")?;

    let before = ctx.procs.sample()?;
    let ack = Latency::new();
    let mut rows = Vec::new();
    let send = |k: u64, due: Instant| {
        let ack = ack.clone();
        let due_us = due.duration_since(t0).as_micros() as u64;
        admin.emit_with_ack(
            "send-group-message",
            &json!({"GroupId": group, "Content": format!("fo {k} {due_us}")}),
            Box::new(move |a, at| {
                if succeeded(a) {
                    ack.record(at.saturating_duration_since(due));
                }
            }),
        );
    };
    for k in 0..singles {
        let due = Instant::now();
        send(k as u64, due);
        let deadline = due + Duration::from_secs(30);
        while tally.counts[k].load(Ordering::Relaxed) < others && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let delivered = tally.counts[k].load(Ordering::Relaxed);
        let last = Duration::from_micros(tally.last_us[k].load(Ordering::Relaxed))
            .saturating_sub(due.duration_since(t0));
        rows.push(json!({
            "message": k, "delivered": delivered, "missing": others - delivered.min(others),
            "last_delivery_ms": round3(last.as_secs_f64() * 1000.0),
        }));
        eprintln!(
            "loadgen: message {k}: {delivered}/{others} members, last after {:.1} ms",
            last.as_secs_f64() * 1000.0
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut steady = Value::Null;
    if args.rate > 0 {
        let n = args.rate * args.seconds;
        let bar = progress::bar(n, "steady");
        let start = Instant::now();
        let mut k = 0;
        while k < n {
            let now = Instant::now();
            while k < n {
                let due = start + Duration::from_nanos(k * 1_000_000_000 / args.rate);
                if due > now {
                    break;
                }
                send(singles as u64 + k, due);
                k += 1;
            }
            bar.set_position(k);
            if k < n {
                tokio::time::sleep_until(
                    (start + Duration::from_nanos(k * 1_000_000_000 / args.rate)).into(),
                )
                .await;
            }
        }
        bar.finish_and_clear();
        let expected = n * others;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tally.steady_total.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delivered = tally.steady_total.load(Ordering::Relaxed);
        let span = Duration::from_micros(tally.steady_last_us.load(Ordering::Relaxed))
            .saturating_sub(start.duration_since(t0));
        steady = json!({
            "rate": args.rate, "seconds": args.seconds, "expected": expected, "delivered": delivered,
            "drops": expected.saturating_sub(delivered),
            "deliveries_per_s": round3(delivered as f64 / span.as_secs_f64().max(1e-9)),
        });
        eprintln!(
            "loadgen: steady {}/s: {delivered}/{expected} deliveries",
            args.rate
        );
    }
    let after = ctx.procs.sample()?;
    let deliveries = tally.delivery.summary().count + tally.steady_total.load(Ordering::Relaxed);
    let mut server = ctx
        .procs
        .between(&before, &after, Some(("messages", total_messages)));
    if let Some(total) = server.get("cpu_seconds").and_then(Value::as_f64) {
        server["cpu_seconds_per_1000_deliveries"] =
            json!(round3(total * 1000.0 / deliveries.max(1) as f64));
    }
    for s in members.sockets.iter().flatten() {
        s.close();
    }
    admin.close();
    let worst = rows
        .iter()
        .filter_map(|r| r["last_delivery_ms"].as_f64())
        .fold(0.0, f64::max);
    Ok(Outcome {
        params: serde_json::to_value(args)?,
        results: json!({
            "members": args.members,
            "group_setup_seconds": round3(setup_seconds),
            "members_connect_seconds": round3(members.elapsed.as_secs_f64()),
            "worst_last_delivery_ms": worst,
            "single_messages": rows,
            "steady": steady,
        }),
        server,
        latencies: vec![
            ("single: send→delivery".into(), tally.delivery.snapshot()),
            ("steady: send→delivery".into(), tally.steady.snapshot()),
            ("send→ack".into(), ack.snapshot()),
        ],
    })
}
