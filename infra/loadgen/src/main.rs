//! `loadgen`: a load generator for any server of the ExpressChat protocol (docs/api.md): accounts
//! through the real signup flow, real Socket.IO over WebSocket, one subcommand per scenario, a JSON
//! + Markdown + SVG report per run. See docs/benchmarks/README.md.

mod accounts;
mod client;
mod ctx;
mod metrics;
mod progress;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use accounts::{Mailbox, Signup};
use client::{Dialer, Endpoint};
use ctx::Ctx;
use metrics::{Processes, Watched};
use report::Report;
use scenarios::{fanout, history, idle, one_to_one, reconnect, Outcome};

#[derive(Parser, Debug)]
#[command(version, about = "Load generator for ExpressChat-protocol servers")]
struct Cli {
    /// Server origin (`http://host:port`); repeat for several gateways: sockets and HTTP
    /// requests go to them in turn.
    #[arg(long = "url", global = true)]
    urls: Vec<String>,
    /// Run an SMTP sink on this address and read verification codes from it (start the server
    /// with `SMTP_URL=smtp://ADDR`).
    #[arg(long, global = true, conflicts_with = "outbox")]
    smtp_sink: Option<String>,
    /// Read verification codes from the server's outbox directory (`DATA_DIR/outbox`).
    #[arg(long, global = true)]
    outbox: Option<PathBuf>,
    /// Keep accounts in this JSON-lines file and reuse them in the next run against the same
    /// server.
    #[arg(long, global = true)]
    accounts: Option<PathBuf>,
    /// A server process whose CPU and memory to record, `NAME=PID` (repeat; name gateway
    /// processes `gateway-1`, `gateway-2` … in --url order).
    #[arg(long = "server-pid", global = true)]
    server_pids: Vec<Watched>,
    /// Where reports go.
    #[arg(long, global = true, default_value = "loadgen-reports")]
    out: PathBuf,
    /// The report's file name (default: scenario and time).
    #[arg(long, global = true)]
    name: Option<String>,
    /// Signups in flight.
    #[arg(long, global = true, default_value_t = 8)]
    signup_concurrency: usize,
    /// Socket connects in flight.
    #[arg(long, global = true, default_value_t = 256)]
    connect_concurrency: usize,
    /// Sockets to one server address from one source address; past that, sockets to a loopback
    /// server bind 127.0.0.2, 127.0.0.3 … (each address has ~28,000 ephemeral ports).
    #[arg(long, global = true, default_value_t = ctx::SOCKETS_PER_SOURCE)]
    sockets_per_source: usize,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// N authenticated sockets held → server RSS per socket, connects/s, connect latency.
    Idle(idle::IdleArgs),
    /// 1:1 messages at fixed arrival rates, stepped up until p99 ack latency passes the limit.
    OneToOne(one_to_one::OneToOneArgs),
    /// One group with every member online: time to the last delivery, deliveries/s, drops.
    Fanout(fanout::FanoutArgs),
    /// A chat of many messages: latency of the first page and of a deep page.
    History(history::HistoryArgs),
    /// Every socket dropped at once and reconnecting with jitter: time until all are back.
    Reconnect(reconnect::ReconnectArgs),
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::Idle(_) => "idle",
            Scenario::OneToOne(_) => "one-to-one",
            Scenario::Fanout(_) => "fanout",
            Scenario::History(_) => "history",
            Scenario::Reconnect(_) => "reconnect",
        }
    }
}

/// Raises the soft limit on open files to the hard one: every socket is a descriptor.
fn raise_file_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

async fn run(cli: Cli) -> Result<()> {
    let files = raise_file_limit();
    let urls = if cli.urls.is_empty() {
        vec!["http://127.0.0.1:3000".to_string()]
    } else {
        cli.urls.clone()
    };
    let mut endpoints = Vec::new();
    for u in &urls {
        endpoints.push(Endpoint::parse(u).await?);
    }
    let mailbox = match (&cli.smtp_sink, &cli.outbox) {
        (Some(addr), _) => Mailbox::sink(addr).await?,
        (None, Some(dir)) => Mailbox::Outbox(dir.clone()),
        (None, None) => bail!(
            "give --smtp-sink ADDR or --outbox DIR: accounts are made through the real signup flow"
        ),
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .context("HTTP client")?;
    let run_tag = format!("{:x}", chrono::Utc::now().timestamp_millis());
    let ctx = Ctx {
        dialer: Dialer::default(),
        signup: Signup {
            http,
            bases: endpoints.iter().map(|e| e.base.clone()).collect(),
            mailbox,
            concurrency: cli.signup_concurrency,
            run_tag,
        },
        endpoints,
        accounts_file: cli.accounts.clone(),
        procs: Processes {
            watched: cli.server_pids.clone(),
        },
        connect_concurrency: cli.connect_concurrency,
        timeout: Duration::from_secs(60),
        sockets_per_source: cli.sockets_per_source,
    };
    let sockets_wanted = match &cli.scenario {
        Scenario::Idle(a) => a.sockets,
        Scenario::Reconnect(a) => a.sockets,
        Scenario::Fanout(a) => a.members,
        _ => 0,
    };
    if sockets_wanted as u64 + 64 > files {
        eprintln!(
            "loadgen: warning: {sockets_wanted} sockets asked for, but this process may open only {files} files (the hard limit)"
        );
    }
    let started = chrono::Utc::now();
    let outcome: Outcome = match &cli.scenario {
        Scenario::Idle(a) => idle::run(&ctx, a).await?,
        Scenario::OneToOne(a) => one_to_one::run(&ctx, a).await?,
        Scenario::Fanout(a) => fanout::run(&ctx, a).await?,
        Scenario::History(a) => history::run(&ctx, a).await?,
        Scenario::Reconnect(a) => reconnect::run(&ctx, a).await?,
    };
    let scenario = cli.scenario.name();
    let report = Report {
        scenario,
        started,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        targets: urls,
        params: outcome.params,
        results: outcome.results,
        server: outcome.server,
        latencies: outcome.latencies,
    };
    let name = cli
        .name
        .clone()
        .unwrap_or_else(|| format!("{scenario}-{}", started.format("%Y%m%dT%H%M%S")));
    let md = report.write(&cli.out, &name)?;
    println!("{}", report.to_markdown(None));
    eprintln!("loadgen: report in {} (and .json, .svg)", md.display());
    // Let the goodbyes go out.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
