//! History: one personal chat filled with --messages messages (sent through the server, a window
//! of them in flight), then pages of 50 read with `fetch-personal-chat`: the newest page, and a deep
//! one (`Before` a message near the very beginning), timed from the request until the
//! `personal-chat` answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde_json::{json, Value};

use super::{field, succeeded, Outcome};
use crate::ctx::{quiet, Ctx};
use crate::metrics::{round3, Latency};
use crate::progress;

/// How long the fill may go without a single answer before the run gives up.
const STALL: Duration = Duration::from_secs(60);

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct HistoryArgs {
    /// Messages in the chat.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Sends in flight while filling it.
    #[arg(long, default_value_t = 256)]
    pub window: u64,
    /// Sockets of the sender filling it, taking turns (as several tabs would; a server may answer
    /// one socket's requests one at a time).
    #[arg(long, default_value_t = 8)]
    pub fill_sockets: usize,
    /// Pages read of each kind.
    #[arg(long, default_value_t = 500)]
    pub samples: u64,
    /// Messages per page.
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
}

pub async fn run(ctx: &Ctx, args: &HistoryArgs) -> Result<Outcome> {
    if args.messages < 2 * args.limit || args.window == 0 || args.fill_sockets == 0 {
        bail!("--messages must be at least twice --limit, --window and --fill-sockets at least 1");
    }
    let accounts = ctx.accounts(2).await?;
    let fleet = ctx
        .connect_many(
            0..args.fill_sockets,
            &accounts,
            |_| 0,
            |_| quiet(),
            "connecting",
        )
        .await;
    fleet.require_all("sockets")?;
    let senders: Vec<_> = fleet.sockets.into_iter().flatten().collect();
    let me = senders[0].clone();
    let chat = me
        .request_id(
            "create-personal-chat",
            &json!({"Receiver": accounts[1].user_id}),
            "create-personal-chat-creator",
            "ChatId",
            ctx.timeout,
        )
        .await?;

    // Fill: `window` sends in flight; remember the id of message number `deep_at`.
    let deep_at = args.limit * 2;
    let deep_id: Arc<Mutex<Option<String>>> = Arc::default();
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let bar = progress::bar(args.messages, "filling");
    let before = ctx.procs.sample()?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut progress_at = (0u64, Instant::now());
    while answered.load(Ordering::Relaxed) < args.messages {
        let done = answered.load(Ordering::Relaxed);
        while sent < args.messages && sent - done < args.window {
            let (answered, failed, deep_id) = (answered.clone(), failed.clone(), deep_id.clone());
            let k = sent;
            senders[(k % senders.len() as u64) as usize].emit_with_ack(
                "send-personal-message",
                &json!({"ChatId": chat, "Content": format!("history {k}")}),
                Box::new(move |ack, _| {
                    if !succeeded(ack) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    } else if k == deep_at {
                        if let Ok(mut d) = deep_id.lock() {
                            *d = field(ack, "MessageId");
                        }
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }),
            );
            sent += 1;
        }
        bar.set_position(done);
        tokio::time::sleep(Duration::from_millis(1)).await;
        if done > progress_at.0 {
            progress_at = (done, Instant::now());
        } else if progress_at.1.elapsed() > STALL {
            bail!(
                "filling the chat stalled: {} of {} sends unanswered for {STALL:?} ({done} answered)",
                sent - done,
                args.messages
            );
        }
    }
    bar.finish_and_clear();
    let fill_seconds = started.elapsed().as_secs_f64();
    let filled = ctx.procs.sample()?;
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} sends were refused while filling the chat");
    }
    let deep =
        deep_id.lock().ok().and_then(|d| d.clone()).ok_or_else(|| {
            anyhow!("the acknowledgement of message {deep_at} carried no MessageId")
        })?;

    let first = Latency::new();
    let deeper = Latency::new();
    let bar = progress::bar(2 * args.samples, "reading pages");
    for i in 0..2 * args.samples {
        let (query, into) = if i % 2 == 0 {
            (json!({"ChatId": chat, "Limit": args.limit}), &first)
        } else {
            (
                json!({"ChatId": chat, "Limit": args.limit, "Before": deep}),
                &deeper,
            )
        };
        let t = Instant::now();
        let page = me
            .request(
                "fetch-personal-chat",
                &query,
                "personal-chat",
                None,
                ctx.timeout,
            )
            .await?;
        into.record(t.elapsed());
        let got = page
            .get("Messages")
            .and_then(Value::as_array)
            .map_or(0, Vec::len) as u64;
        if got != args.limit {
            bail!("a page held {got} messages, not {}", args.limit);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let after = ctx.procs.sample()?;
    for s in &senders {
        s.close();
    }
    let fill = ctx
        .procs
        .between(&before, &filled, Some(("messages", args.messages)));
    Ok(Outcome {
        params: serde_json::to_value(args)?,
        results: json!({
            "messages": args.messages,
            "fill_seconds": round3(fill_seconds),
            "fill_messages_per_s": round3(args.messages as f64 / fill_seconds),
            "fill_server_cpu_seconds_per_1000_messages": fill.get("cpu_seconds_per_1000_messages").cloned().unwrap_or(Value::Null),
            "first_page_p50_ms": first.summary().p50_ms,
            "first_page_p99_ms": first.summary().p99_ms,
            "deep_page_p50_ms": deeper.summary().p50_ms,
            "deep_page_p99_ms": deeper.summary().p99_ms,
            "deep_page_before": format!("message {deep_at} of {}", args.messages),
        }),
        server: ctx
            .procs
            .between(&filled, &after, Some(("pages", 2 * args.samples))),
        latencies: vec![
            (format!("first page of {}", args.limit), first.snapshot()),
            (format!("deep page of {}", args.limit), deeper.snapshot()),
        ],
    })
}
