//! Idle: N authenticated sockets held open → the server's RSS per socket, connects/s, connect p99.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

use super::Outcome;
use crate::ctx::{quiet, Ctx};
use crate::metrics::{round3, usage};

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct IdleArgs {
    /// Sockets to hold.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Accounts they belong to (taken in turn; a user may have many sockets).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Seconds to hold them (answering pings) before memory is read again.
    #[arg(long, default_value_t = 10)]
    pub hold: u64,
}

pub async fn run(ctx: &Ctx, args: &IdleArgs) -> Result<Outcome> {
    if args.sockets == 0 || args.users == 0 {
        bail!("--sockets and --users must be at least 1");
    }
    let accounts = ctx.accounts(args.users).await?;
    let own_before = usage(std::process::id())?;
    let before = ctx.procs.sample()?;
    let fleet = ctx
        .connect_many(
            0..args.sockets,
            &accounts,
            |i| i % args.users,
            |_| quiet(),
            "connecting",
        )
        .await;
    let connected_at = ctx.procs.sample()?;
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let after = ctx.procs.sample()?;
    let own_after = usage(std::process::id())?;
    let ok = fleet.ok();

    // Memory per socket of each gateway: the k-th watched process named gateway* serves the k-th
    // --url; with one server address every watched process serves them all.
    let n_end = ctx.endpoints.len();
    let mut per_socket = serde_json::Map::new();
    let mut gateway_k = 0;
    for (i, w) in ctx.procs.watched.iter().enumerate() {
        let on_this = if n_end == 1 {
            ok
        } else if w.name.starts_with("gateway") {
            gateway_k += 1;
            fleet
                .sockets
                .iter()
                .enumerate()
                .filter(|(j, s)| s.is_some() && j % n_end == gateway_k - 1)
                .count()
        } else {
            continue;
        };
        if on_this > 0 && (n_end == 1 || w.name.starts_with("gateway")) {
            let grew = after.rss_kib(i) as f64 - before.rss_kib(i) as f64;
            per_socket.insert(w.name.clone(), json!(round3(grew / on_this as f64)));
        }
    }
    let secs = fleet.elapsed.as_secs_f64();
    let results = json!({
        "sockets": args.sockets,
        "users": args.users,
        "connected": ok,
        "failed": fleet.failed,
        "first_errors": fleet.first_errors.join(" | "),
        "connect_seconds": round3(secs),
        "connects_per_second": round3(ok as f64 / secs.max(1e-9)),
        "source_addresses": fleet.source_addresses(),
        "server_rss_per_socket_kib": per_socket,
        "loadgen_rss_per_socket_kib": round3((own_after.rss_kib as f64 - own_before.rss_kib as f64) / ok.max(1) as f64),
        "server_cpu_seconds_connecting": ctx.procs.between(&before, &connected_at, Some(("sockets", ok as u64)))["cpu_seconds"],
    });
    for s in fleet.sockets.iter().flatten() {
        s.close();
    }
    Ok(Outcome {
        params: serde_json::to_value(args)?,
        results,
        server: ctx
            .procs
            .between(&before, &after, Some(("sockets", ok as u64))),
        latencies: vec![("connect and resync".into(), fleet.latency.snapshot())],
    })
}
