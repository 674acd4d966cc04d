//! Test support shared by every crate's tests: a uniquely named PostgreSQL database on the
//! machine's server, dropped when the value is dropped, so test runs never see each other's data.

use uuid::Uuid;

/// The server tests use: `TEST_PG_URL` (an admin connection), else the local trust-auth default.
pub fn admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database; dropped (with any open connections) on drop.
pub struct TempPostgres {
    admin: String,
    name: String,
}

impl TempPostgres {
    /// Creates `<prefix>_<uuid>`. Panics (this is test support) when PostgreSQL is unreachable,
    /// naming the script that starts it.
    pub async fn create(prefix: &str) -> Self {
        let admin = admin_url();
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL must be reachable at TEST_PG_URL ({e}); run infra/scripts/services"
                )
            });
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        Self { admin, name }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        let base = self
            .admin
            .rsplit_once('/')
            .map_or(self.admin.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::Executor::execute(&mut conn, drop.as_str()).await;
                }
            });
        })
        .join();
    }
}

/// The NATS server tests use: `TEST_NATS_URL`, else the local default.
pub fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A client of that server. Panics (this is test support) when it is unreachable, naming the
/// script that starts it.
pub async fn nats_client() -> async_nats::Client {
    crate::bus::connect(&nats_url()).await.unwrap_or_else(|e| {
        panic!("NATS must be reachable at TEST_NATS_URL ({e:#}); run infra/scripts/services")
    })
}

/// Deletes the events stream of a test's NATS prefix when dropped, so runs leave nothing behind.
pub struct DeleteEventsStream {
    client: async_nats::Client,
    name: String,
}

impl DeleteEventsStream {
    pub fn new(client: &async_nats::Client, prefix: &str) -> Self {
        Self {
            client: client.clone(),
            name: crate::subjects::events_stream(prefix),
        }
    }
}

impl Drop for DeleteEventsStream {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = async_nats::jetstream::new(client)
                        .delete_stream(&name)
                        .await;
                });
            }
        })
        .join();
    }
}

/// A subject prefix no other test run uses.
pub fn unique_prefix() -> String {
    format!("test_{}", Uuid::new_v4().simple())
}

/// A new event of type `TestHappened` with `payload`, no actor and fresh ids: what tests of the
/// log's plumbing (relay, feeds, deliveries) append.
pub fn test_event(payload: impl Into<String>) -> events_schema::NewEvent {
    events_schema::NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "TestHappened".into(),
        schema_version: 1,
        occurred_at: events_schema::envelope::now_millis(),
        metadata: events_schema::EventMetadata {
            actor: None,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            trace_parent: None,
        },
        payload: payload.into(),
    }
}

/// Appends recorded events (a checked-in fixture, say) to `store` as they were written: each to
/// its stream, expecting the version before its own. Panics (test support) when one is refused.
pub async fn append_recorded(
    store: &dyn crate::EventStore,
    events: &[events_schema::RecordedEvent],
) {
    for event in events {
        let expected = match event.version {
            0 => crate::ExpectedVersion::NoStream,
            v => crate::ExpectedVersion::Exact(v - 1),
        };
        store
            .append(
                &event.stream,
                expected,
                vec![events_schema::fixtures::as_new(event)],
            )
            .await
            .unwrap_or_else(|e| panic!("appending recorded event {}: {e}", event.position));
    }
}

/// `--name value` from a bench's command line.
pub fn bench_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == &format!("--{name}"))
        .and_then(|i| args.get(i + 1).cloned())
}

/// Prints the p50, p99 and max of a bench's samples (to stderr, beside criterion's report).
pub fn print_percentiles(name: &str, samples: &mut [std::time::Duration]) {
    if samples.is_empty() {
        return;
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    eprintln!(
        "{name}: {} samples, p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
}
