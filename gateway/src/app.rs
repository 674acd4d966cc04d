//! Building and running the server. `main` and every integration test build it the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::serve::ListenerExt;
use axum::{Router, ServiceExt};
use command_service::CommandService;
use infra::config::Settings;
use infra::db::Database;
use infra::event_store::open_event_store;
use infra::mail::mailer_from_settings;
use projection_service::Projector;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tower::Layer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::AuthService;
use crate::cluster::Cluster;
use crate::http::{self, rate_limit::AuthRateLimiter};
use crate::state::{AppState, CommandBus, Consistency, OriginSockets};
use crate::{delivery, socket};

/// How long a query waits for the read models to reflect the user's own last write.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(3);
/// Largest Socket.IO message accepted (4,000 characters of content plus envelope, with room).
const MAX_SOCKET_PAYLOAD: u64 = 64 * 1024;
/// Read chunk of a WebSocket connection (socketioxide's default is 4 KiB per socket): a request
/// of a few hundred bytes is one read; a longer one (up to 4,000 characters) is read in chunks.
const WS_READ_BUFFER: usize = 1024;

/// Where the read models are projected.
enum Projection {
    /// By a projector in this process (all-in-one).
    InProcess {
        projector: Arc<Projector>,
        progress_tx: watch::Sender<events_schema::Position>,
    },
    /// By the projection-service, whose progress arrives over NATS.
    Remote(watch::Sender<events_schema::Position>),
}

/// A built server, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    router: Router,
    /// The in-process projector (all-in-one only).
    projector: Option<JoinHandle<anyhow::Result<()>>>,
    background: Vec<JoinHandle<()>>,
    stop_projector: watch::Sender<bool>,
}

impl Application {
    /// Opens every backend (failing with the name of the one that doesn't answer), starts the
    /// projector (all-in-one) or follows the topology over NATS (`NATS_URL`), starts delivery, and
    /// binds `HOST:PORT` (port 0: any free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let store = open_event_store(&settings.event_store_url)
            .await
            .context("event store (EVENT_STORE_URL) unavailable")?;
        let reads = Database::connect(&settings.database_url)
            .await
            .context("database (DATABASE_URL) unavailable")?;
        let secret = settings.load_or_create_auth_secret()?;
        let auth = AuthService::new(
            reads.clone(),
            &secret,
            settings.access_token_ttl,
            settings.refresh_token_ttl,
        )
        .await
        .context("accounts")?;
        let mailer = mailer_from_settings(&settings)?;
        let (applied_tx, applied_rx) = mpsc::channel(256);
        let (stop_projector, stop_rx) = watch::channel(false);

        // All-in-one: the command-service and the projector in this process. Production: both
        // are other processes, reached over NATS.
        let (commands, cluster, projection): (Arc<dyn CommandBus>, _, _) = match &settings.nats_url
        {
            None => {
                let projector =
                    Arc::new(Projector::new(reads.clone()).await.context("read models")?);
                let (progress_tx, progress_rx) = watch::channel(projector.checkpoint().await?);
                let service = Arc::new(CommandService::new(store.clone()));
                let projection = Projection::InProcess {
                    projector,
                    progress_tx,
                };
                (service, None, (projection, progress_rx))
            }
            Some(url) => {
                let client = infra::bus::connect(url).await?;
                let start = projection_service::queries::checkpoint(&reads)
                    .await
                    .context("read models (is the projection-service running?)")?;
                let (progress_tx, progress_rx) = watch::channel(start);
                let cluster = Cluster {
                    client: client.clone(),
                    prefix: settings.nats_prefix.clone(),
                };
                let bus = Arc::new(infra::bus::NatsCommands::new(client, &settings.nats_prefix));
                (
                    bus,
                    Some(cluster),
                    (Projection::Remote(progress_tx), progress_rx),
                )
            }
        };
        let (projection, progress_rx) = projection;

        let state = AppState {
            limiter: Arc::new(AuthRateLimiter::new(
                &settings.auth_rate_limit,
                settings.trust_proxy,
            )),
            settings: settings.clone(),
            auth: Arc::new(auth),
            mailer,
            commands,
            reads,
            store: store.clone(),
            consistency: Arc::new(Consistency::new(progress_rx, READ_YOUR_WRITES_WAIT)),
            origins: Arc::new(OriginSockets::default()),
            cluster: cluster.clone(),
            io_cell: Arc::new(OnceLock::new()),
            requests: Arc::default(),
        };
        let (socket_layer, io) = SocketIo::builder()
            .max_payload(MAX_SOCKET_PAYLOAD)
            .max_buffer_size(socket::outbound::SEND_BUFFER)
            // Each WebSocket reads in chunks of this size and keeps the buffer: most frames are small.
            .ws_read_buffer_size(WS_READ_BUFFER)
            .with_state(state.clone())
            .build_layer();
        socket::register(&io);
        let _ = state.io_cell.set(io);

        let mut background = vec![
            tokio::spawn(delivery::run(state.clone(), applied_rx)),
            tokio::spawn(sweep(state.clone())),
        ];
        let projector = match projection {
            Projection::InProcess {
                projector,
                progress_tx,
            } => Some(tokio::spawn(projection_service::run(
                store,
                projector,
                progress_tx,
                Some(applied_tx),
                stop_rx,
            ))),
            Projection::Remote(progress_tx) => {
                if let Some(cluster) = &cluster {
                    background.extend(
                        cluster
                            .follow(state.clone(), progress_tx, applied_tx)
                            .await?,
                    );
                }
                None
            }
        };
        let router = http::router()
            .layer(socket_layer)
            .layer(cors(&settings))
            .with_state(state.clone());

        let listener = listen(&settings.host, settings.port)
            .await
            .with_context(|| format!("cannot bind {}:{}", settings.host, settings.port))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            state,
            router,
            projector,
            background,
            stop_projector,
        })
    }

    /// The bound address (useful with PORT=0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then answers the socket requests already taken (new
    /// ones are refused `internal`), disconnects every socket (clients reconnect, to another
    /// gateway if there is one), finishes in-flight HTTP requests and lets the projector commit
    /// the batch in hand, within 10 s.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!("listening on http://{}", self.addr);
        let io = self.state.io().cloned();
        let requests = self.state.requests.clone();
        let graceful = async move {
            shutdown.await;
            tracing::info!("shutting down");
            let left = requests.stop(ANSWER_BEFORE_CLOSING).await;
            if left > 0 {
                tracing::warn!(left, "closing sockets with requests still unanswered");
            }
            if let Some(io) = io {
                io.close().await;
            }
        };
        let app = tower::util::MapRequestLayer::new(|req: Request| {
            http::lowercase_path(http::own_head(req))
        })
        .layer(self.router);
        // Without TCP_NODELAY, a small emit right after another (CONNECT then `user-id`) waits for
        // the client's delayed ACK: 40 ms on Linux.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let serve = axum::serve(
            listener,
            ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
        )
        .with_graceful_shutdown(graceful);
        serve.await.context("server failed")?;
        let _ = self.stop_projector.send(true);
        if let Some(projector) = self.projector {
            match tokio::time::timeout(Duration::from_secs(8), projector).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::error!(error = %e, "projector stopped with an error"),
                Ok(Err(e)) => tracing::error!(error = %e, "projector task failed"),
                Err(_) => tracing::warn!("projector did not stop in time"),
            }
        }
        if let Some(cluster) = &self.state.cluster {
            let _ = cluster.client.flush().await;
        }
        for task in self.background {
            task.abort();
        }
        Ok(())
    }
}

/// How long a stopping gateway waits for the answers to the socket requests it took. Commands are
/// answered within 5 s in every case; most take milliseconds. The rest of the stop fits the 10 s.
const ANSWER_BEFORE_CLOSING: Duration = Duration::from_secs(4);

fn cors(settings: &Settings) -> CorsLayer {
    let origins: Vec<HeaderValue> = settings
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
}

/// Forgets rate-limit entries, delivery origins and read-your-writes marks that no longer matter.
async fn sweep(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        state.limiter.sweep();
        state.origins.sweep();
        state.consistency.sweep();
    }
}

/// Connections the kernel may hold for us before we accept them. tokio's `bind` asks for 1,024;
/// when thousands of clients reconnect at once (a restarted proxy, a network blip) the excess SYNs
/// were dropped and those clients waited out TCP's retransmission back-off (1 s, 3 s, 7 s …). The
/// kernel caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 65_535;

async fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolves to nothing")))
}
