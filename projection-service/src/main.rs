//! `projection-service`: the projector on its own, into `DATABASE_URL`. With `NATS_URL` (the
//! production topology) it is fed by a JetStream durable consumer and announces its progress to
//! the gateways; without, it follows `EVENT_STORE_URL` directly. (The all-in-one gateway runs the
//! same projector in-process.)
//!
//! Operator subcommands: `audit` prints a chat's or a user's history from the event store;
//! `replay` rebuilds the read models from the log without downtime (see `--help`).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use infra::audit::AuditParams;
use infra::config::Settings;
use infra::db::Database;
use infra::event_store::open_event_store;
use projection_service::audit_cli::{self, Format, Whose};
use projection_service::{run, Projector};
use tokio::sync::watch;

/// The projection-service: builds the read models from the event log. Settings come from the
/// environment, like every service's (README, "Settings").
#[derive(Parser)]
#[command(version)]
struct Cli {
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
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    infra::process::init_logging();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("projection-service: bad setting: {e}");
            return ExitCode::from(2);
        }
    };
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
    };
    match done {
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
    let projector = Arc::new(Projector::new(db).await?);
    let from = projector.checkpoint().await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        // Finish the batch in hand, then stop.
        let _ = stop_tx.send(true);
    });
    if let Some(url) = &settings.nats_url {
        let client = infra::bus::connect(url).await?;
        tracing::info!(from, "projecting from JetStream");
        let prefix = settings.nats_prefix.clone();
        let done = projection_service::nats::run(client.clone(), prefix, projector, stop_rx).await;
        let _ = client.flush().await;
        return done;
    }
    let store = open_event_store(&settings.event_store_url)
        .await
        .map_err(|e| anyhow::anyhow!("event store (EVENT_STORE_URL) unavailable: {e:#}"))?;
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
