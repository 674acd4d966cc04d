//! `projection-service`: the projector on its own, into `DATABASE_URL`. With `NATS_URL` (the
//! production topology) it is fed by a JetStream durable consumer, reads from `EVENT_STORE_URL` only
//! what the stream no longer holds, and publishes what each commit applied for the gateways to
//! deliver; without, it follows `EVENT_STORE_URL` directly. (The all-in-one gateway runs the
//! same projector in-process.)
//!
//! Operator subcommands: `audit` prints a chat's or a user's history from the event store;
//! `replay` rebuilds the read models from the log without downtime (see `--help`).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use infra::config::{Settings, SettingsArgs};
use infra::db::Database;
use infra::event_store::open_event_store;
use infra::health::Checks;
use projection_service::audit::cli::{self as audit_cli, Format, Whose};
use projection_service::audit::AuditParams;
use projection_service::replay::{replay, ReplayOptions, ReplayOutcome, PROJECTIONS};
use projection_service::{run, Projector};
use tokio::sync::watch;

/// The projection-service: builds the read models from the event log. The settings, every
/// service's, go before a subcommand.
#[derive(Parser)]
#[command(version, after_help = infra::config::AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Project for as long as it runs (what it does with no subcommand).
    Serve,
    /// Print the history of a chat or of a user from the event store (EVENT_STORE_URL).
    Audit {
        /// Every event of this chat (or group), deleted ones included.
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        chat: Option<String>,
        /// Every event this user acted in.
        #[arg(long)]
        user: Option<String>,
        /// Only events after this global position.
        #[arg(long)]
        after: Option<String>,
        /// Print at most this many events (default: all).
        #[arg(long)]
        limit: Option<String>,
        /// Only events at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Only events of this type (e.g. MessageSent).
        #[arg(long = "type")]
        event_type: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Rebuild read models from position 0 into fresh tables while the live ones keep serving,
    /// compare them with the live ones at the same position, and swap them in atomically.
    /// Resumes where an interrupted replay stopped.
    Replay {
        /// Every projection.
        #[arg(
            long,
            conflicts_with = "projection",
            required_unless_present = "projection"
        )]
        all: bool,
        /// One projection, by name (read_models).
        #[arg(long)]
        projection: Option<String>,
        /// Swap even when the rebuilt tables differ from the live ones (after reporting it).
        #[arg(long)]
        force: bool,
        /// Stop after rebuilding this many events (run again to resume).
        #[arg(long)]
        stop_after: Option<u64>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // Before the command line (clap falls back to the environment) and before logging starts
    // (RUST_LOG).
    infra::config::load_dotenv();
    let cli = Cli::parse();
    let settings = match Settings::from_args(&cli.settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("projection-service: bad setting: {e}");
            return ExitCode::from(2);
        }
    };
    // Held to the end of `main`: dropping it exports the last spans.
    let _traces =
        match infra::telemetry::init_logging(settings.telemetry.log_format, "projection-service") {
            Ok(exporter) => exporter,
            Err(e) => {
                eprintln!("projection-service: {e:#}");
                return ExitCode::from(2);
            }
        };
    if let Err(e) = infra::telemetry::install(settings.telemetry.metrics) {
        eprintln!("projection-service: metrics: {e:#}");
        return ExitCode::FAILURE;
    }
    let done = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Audit {
            chat,
            user,
            after,
            limit,
            since,
            until,
            event_type,
            format,
        } => {
            let params = AuditParams {
                after,
                limit,
                since,
                until,
                event_type,
            };
            match (chat, user) {
                (Some(chat), _) => audit(settings, Whose::Chat(chat), params, format).await,
                (None, Some(user)) => audit(settings, Whose::User(user), params, format).await,
                (None, None) => Err(anyhow::anyhow!("audit needs --chat or --user")),
            }
        }
        Command::Replay {
            all,
            projection,
            force,
            stop_after,
        } => {
            let names: Vec<String> = match (all, projection) {
                (_, Some(name)) => vec![name],
                (true, None) => PROJECTIONS.iter().map(|p| (*p).to_owned()).collect(),
                (false, None) => vec![],
            };
            replay_all(settings, names, force, stop_after).await
        }
    };
    match done {
        Err(e) if e.downcast_ref::<ReplayDiffers>().is_some() => {
            eprintln!("projection-service: {e:#}");
            ExitCode::from(3)
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("projection-service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let shutdown = infra::process::shutdown_signal();
    let db = Database::connect(&settings.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("database (DATABASE_URL) unavailable: {e:#}"))?;
    // Parked events leave the process ready: see dead_letters::degraded.
    let database = Checks::default().with_database(db.clone()).with_degraded({
        let db = db.clone();
        move || {
            let db = db.clone();
            async move { projection_service::dead_letters::degraded(&db).await }
        }
    });
    let projector = Arc::new(Projector::new(db.clone()).await?);
    if let Some(parked) = projection_service::dead_letters::degraded(&db).await {
        tracing::warn!("{parked}: a replay that can apply them brings them back");
    }
    let from = projector.checkpoint().await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        // Finish the batch in hand, then stop.
        let _ = stop_tx.send(true);
    });
    if let Some(url) = &settings.nats_url {
        let client = infra::bus::connect(url).await?;
        // The event store is opened only if the stream no longer reaches back to the checkpoint,
        // and counts for /ready only then.
        let store = Arc::new(projection_service::nats::LazyStore::new(
            settings.event_store_url.clone(),
        ));
        let checks = database.with_nats(client.clone()).with("event store", {
            let store = store.clone();
            move || {
                let store = store.clone();
                async move { store.ready().await }
            }
        });
        infra::health::serve_if_asked(&settings, checks, stop_rx.clone()).await?;
        tracing::info!(from, "projecting from JetStream");
        let prefix = settings.nats_prefix.clone();
        let done =
            projection_service::nats::run(client.clone(), prefix, projector, store, stop_rx).await;
        let _ = client.flush().await;
        return done;
    }
    let store = open_event_store(&settings.event_store_url)
        .await
        .map_err(|e| anyhow::anyhow!("event store (EVENT_STORE_URL) unavailable: {e:#}"))?;
    let checks = database.with_event_store("event store", store.clone());
    infra::health::serve_if_asked(&settings, checks, stop_rx.clone()).await?;
    let (progress, _) = watch::channel(from);
    tracing::info!(from, "projecting from the event store");
    run(store, projector, progress, None, stop_rx).await
}

async fn audit(
    settings: Settings,
    whose: Whose,
    params: AuditParams,
    format: Format,
) -> anyhow::Result<()> {
    let store = open_event_store(&settings.event_store_url)
        .await
        .map_err(|e| anyhow::anyhow!("event store (EVENT_STORE_URL) unavailable: {e:#}"))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    audit_cli::print(store.as_ref(), whose, params, format, &mut out).await?;
    Ok(())
}

/// The rebuilt tables differ from the live ones: reported, not swapped (exit code 3).
#[derive(Debug)]
struct ReplayDiffers;

impl std::fmt::Display for ReplayDiffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not swapped")
    }
}

impl std::error::Error for ReplayDiffers {}

async fn replay_all(
    settings: Settings,
    projections: Vec<String>,
    force: bool,
    stop_after: Option<u64>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !projections.is_empty(),
        "replay needs --all or --projection NAME"
    );
    let store = open_event_store(&settings.event_store_url)
        .await
        .map_err(|e| anyhow::anyhow!("event store (EVENT_STORE_URL) unavailable: {e:#}"))?;
    let mut differs = false;
    for projection in projections {
        let options = ReplayOptions {
            projection: projection.clone(),
            force,
            stop_after,
        };
        let started = std::time::Instant::now();
        match replay(store.clone(), &settings.database_url, &options).await? {
            None => println!(
                "{projection}: stopped after {} events as asked; run again to resume",
                stop_after.unwrap_or(0)
            ),
            Some(ReplayOutcome::Swapped {
                position,
                events,
                differed,
            }) => {
                let seconds = started.elapsed().as_secs_f64();
                println!(
                    "{projection}: rebuilt from {events} events in {seconds:.1} s ({:.0} events/s) and swapped in at position {position}{}",
                    events as f64 / seconds.max(1e-3),
                    if differed.is_empty() {
                        String::from("; every table matched the live one")
                    } else {
                        format!("; forced although these differed: {}", differed.join(", "))
                    }
                );
            }
            Some(ReplayOutcome::Differs {
                position,
                tables,
                kept,
            }) => {
                differs = true;
                println!(
                    "{projection}: at position {position} the rebuilt tables differ from the live ones in: {}; \
                     nothing was swapped (the rebuilt tables are kept in {kept}; --force swaps them in)",
                    tables.join(", ")
                );
            }
        }
    }
    if differs {
        return Err(ReplayDiffers.into());
    }
    Ok(())
}
