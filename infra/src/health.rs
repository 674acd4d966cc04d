//! Readiness, the one implementation of `/ready` for every binary: [`Checks`] names the backends a
//! process needs and the conditions that leave it degraded, and [`Checks::ready`] answers 200 when
//! every backend answers, else 503 naming the ones that do not. A process that is up but degraded
//! (a projector with parked events) stays ready and says so under `degraded`. The gateway answers
//! `/ready` on its own port with its checks; the services that speak no HTTP of their own (the
//! command-service and the projection-service) get `/health` and `/ready` here, served when
//! `HEALTH_PORT` is set.

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::config::Settings;
use crate::db::Database;
use crate::EventStore;

/// How long one backend may take to answer before `/ready` counts it as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;
type Note = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send + Sync>;

/// The backends `/ready` asks, each by the name it reports when it does not answer, and the
/// conditions it reports without being unready.
#[derive(Clone, Default)]
pub struct Checks {
    probes: Vec<(Cow<'static, str>, Probe)>,
    notes: Vec<Note>,
}

impl Checks {
    /// Adds a backend, reported as `name` when it does not answer: `probe` resolves `true` when it
    /// answers.
    pub fn with<F, Fut>(mut self, name: impl Into<Cow<'static, str>>, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.probes
            .push((name.into(), Arc::new(move || Box::pin(probe()))));
        self
    }

    /// An event store, by its ping, reported as `name`.
    pub fn with_event_store(
        self,
        name: impl Into<Cow<'static, str>>,
        store: Arc<dyn EventStore>,
    ) -> Self {
        self.with(name, move || {
            let store = store.clone();
            async move {
                let answer = store.ping().await;
                if let Err(e) = &answer {
                    tracing::debug!(error = %e, "the event store's ping failed");
                }
                answer.is_ok()
            }
        })
    }

    /// A database, by its ping, reported as `database`.
    pub fn with_database(self, db: Database) -> Self {
        self.with("database", move || {
            let db = db.clone();
            async move {
                let answer = db.ping().await;
                if let Err(e) = &answer {
                    tracing::debug!(error = %e, "the database's ping failed");
                }
                answer.is_ok()
            }
        })
    }

    /// Adds a condition that leaves the process ready but wants an operator's look: `note`
    /// resolves to a line saying what, or `None` while all is well. Restarting the process or
    /// taking it out of service would not mend such a condition, so `/ready` stays 200 and lists
    /// the lines under `degraded`.
    pub fn with_degraded<F, Fut>(mut self, note: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        self.notes.push(Arc::new(move || Box::pin(note())));
        self
    }

    /// NATS, by its client's connection state.
    pub fn with_nats(self, client: async_nats::Client) -> Self {
        self.with("NATS", move || {
            let connected = client.connection_state() == async_nats::connection::State::Connected;
            async move { connected }
        })
    }

    /// The names of the backends that do not answer now, asked together.
    pub async fn down(&self) -> Vec<String> {
        let answers = futures::future::join_all(self.probes.iter().map(|(name, probe)| {
            let probe = probe();
            async move {
                let up = tokio::time::timeout(CHECK_TIMEOUT, probe)
                    .await
                    .unwrap_or(false);
                if !up {
                    tracing::warn!(backend = %name, "does not answer");
                }
                (name.to_string(), up)
            }
        }))
        .await;
        answers
            .into_iter()
            .filter(|(_, up)| !up)
            .map(|(name, _)| name)
            .collect()
    }

    /// The degraded conditions that hold now, asked together (one that does not answer in time
    /// says nothing).
    pub async fn degraded(&self) -> Vec<String> {
        let notes = self.notes.iter().map(|note| async move {
            tokio::time::timeout(CHECK_TIMEOUT, note())
                .await
                .ok()
                .flatten()
        });
        futures::future::join_all(notes)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The answer to `/ready`: [`readiness`] of what does not answer, with the degraded
    /// conditions that hold.
    pub async fn ready(&self) -> (StatusCode, Json<Value>) {
        let (down, degraded) = futures::join!(self.down(), self.degraded());
        let (status, Json(mut body)) = readiness(&down);
        if !degraded.is_empty() {
            body["degraded"] = json!(degraded);
        }
        (status, Json(body))
    }
}

/// The answer to `/ready` when `down` is what does not answer. Whoever found a backend down has
/// logged it.
pub fn readiness(down: &[impl AsRef<str>]) -> (StatusCode, Json<Value>) {
    if down.is_empty() {
        return (
            StatusCode::OK,
            Json(json!({"success": 1, "message": "ready"})),
        );
    }
    let names: Vec<&str> = down.iter().map(AsRef::as_ref).collect();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "success": -1,
            "message": format!("not ready: {} not answering", names.join(", ")),
            "down": names,
        })),
    )
}

/// When `HEALTH_PORT` is set, serves `/health`, `/ready` and `/metrics` on `HOST` at that port until `stop`
/// turns true, and returns the bound address (the port may be 0: any free one). Logs
/// `health on http://…` once listening.
pub async fn serve_if_asked(
    settings: &Settings,
    checks: Checks,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<SocketAddr>> {
    match settings.health_port {
        None => Ok(None),
        Some(port) => serve(&settings.host, port, checks, stop).await.map(Some),
    }
}

async fn serve(
    host: &str,
    port: u16,
    checks: Checks,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("HEALTH_PORT: cannot listen on {host}:{port}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route(
            "/health",
            get(|| async { Json(json!({"success": 1, "message": "ok"})) }),
        )
        .route(
            "/ready",
            get(|State(checks): State<Checks>| async move { checks.ready().await }),
        )
        .route("/metrics", get(crate::telemetry::metrics_route))
        .with_state(checks);
    tokio::spawn(async move {
        let stopped = async move {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::warn!(error = %e, "the health endpoint stopped");
        }
    });
    tracing::info!("health on http://{bound}");
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_names_exactly_the_backends_that_do_not_answer() {
        let checks = Checks::default()
            .with("event store", || async { true })
            .with("database", || async { false })
            .with("NATS", || async {
                // Hangs: counted as down after the timeout, never waited for longer.
                std::future::pending::<()>().await;
                true
            });
        tokio::time::pause();
        let down = checks.down().await;
        assert_eq!(down, vec!["database", "NATS"]);
        let (status, Json(body)) = readiness(&down);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["message"], "not ready: database, NATS not answering");
        assert_eq!(body["down"], json!(["database", "NATS"]));
        let (status, _) = readiness(&Checks::default().down().await);
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_degraded_process_stays_ready_and_says_why() {
        let checks = Checks::default()
            .with("database", || async { true })
            .with_degraded(|| async { Some("2 events parked".to_owned()) })
            .with_degraded(|| async { None });
        let (status, Json(body)) = checks.ready().await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["degraded"], json!(["2 events parked"]));
        let (status, Json(body)) = checks
            .clone()
            .with("NATS", || async { false })
            .ready()
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body["degraded"],
            json!(["2 events parked"]),
            "down and degraded"
        );
        let (_, Json(body)) = Checks::default()
            .with_degraded(|| async { None })
            .ready()
            .await;
        assert_eq!(
            body,
            json!({"success": 1, "message": "ready"}),
            "nothing to say"
        );
    }

    /// Over HTTP, as a health check would ask it; and the server stops when told.
    #[tokio::test]
    async fn the_endpoint_answers_over_http_and_stops_when_told() {
        let settings = Settings::from_vars([("HEALTH_PORT".to_owned(), "0".to_owned())]).unwrap();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let checks = Checks::default().with("database", {
            let up = up.clone();
            move || {
                let answer = up.load(std::sync::atomic::Ordering::SeqCst);
                async move { answer }
            }
        });
        let (stop_tx, stop) = watch::channel(false);
        let addr = serve_if_asked(&settings, checks, stop)
            .await
            .unwrap()
            .expect("HEALTH_PORT asks for the endpoint");
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await?;
            let mut text = String::new();
            tcp.read_to_string(&mut text).await?;
            std::io::Result::Ok(text)
        };
        assert!(get("/health").await.unwrap().starts_with("HTTP/1.1 200"));
        assert!(get("/ready").await.unwrap().starts_with("HTTP/1.1 200"));
        up.store(false, std::sync::atomic::Ordering::SeqCst);
        let ready = get("/ready").await.unwrap();
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(
            ready.contains("not ready: database not answering"),
            "{ready}"
        );
        stop_tx.send(true).unwrap();
        let mut refused = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "the endpoint still listens after the stop");
        assert_eq!(
            serve_if_asked(
                &Settings::from_vars([]).unwrap(),
                Checks::default(),
                watch::channel(false).1
            )
            .await
            .unwrap(),
            None,
            "no HEALTH_PORT, no endpoint"
        );
    }
}
