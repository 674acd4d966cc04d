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
use events_schema::Position;
use infra::config::Settings;
use infra::db::Database;
use infra::event_store::open_event_store;
use infra::mail::mailer_from_settings;
use infra::EventStore;
use projection_service::Projector;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{ParserConfig, SocketIo};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tower::Layer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::AuthService;
use crate::http;
use crate::limits::{AuthRateLimiter, Limits};
use crate::presence::Presence;
use crate::state::{AppState, CommandBus, Consistency, OriginSockets, SessionEnds};
use crate::topology::{GiveUp, Topology};
use crate::{delivery, socket};

/// How long a query waits for the read models to reflect the user's own last write.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(3);
/// Largest Socket.IO packet accepted (4,000 characters of content plus envelope, with room), on
/// WebSocket and long-polling alike, before or after authentication (docs/api.md, "Requests").
/// A larger one closes its connection, and is refused from its length before it is read: the server
/// never holds more than this for one packet.
const MAX_SOCKET_PAYLOAD: usize = 64 * 1024;
/// Binary attachments a packet may announce. The protocol sends none; a few are tolerated, and
/// their bytes count against [`MAX_SOCKET_PAYLOAD`] together.
const MAX_BINARY_ATTACHMENTS: usize = 4;
/// How long a packet announcing attachments may wait for them before its connection is closed.
const ATTACHMENT_WAIT: Duration = Duration::from_secs(10);
/// How long an engine.io connection may stay without asking for the namespace (socket.io's
/// CONNECT, which carries the credentials); clients send it at once. socketioxide's default is 45 s.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// Read chunk of a WebSocket connection (socketioxide's default is 4 KiB per socket): a request
/// of a few hundred bytes is one read; a longer one (up to 4,000 characters) is read in chunks.
const WS_READ_BUFFER: usize = 1024;

/// Where commands are decided and the read models projected.
enum Services {
    /// All-in-one: the command-service and the projector in this process.
    InProcess {
        commands: Arc<CommandService>,
        projector: Arc<Projector>,
        progress: watch::Sender<Position>,
    },
    /// The production topology: both are other processes, reached over NATS; the read models'
    /// progress arrives from there.
    Remote {
        topology: Topology,
        progress: watch::Sender<Position>,
    },
}

impl Services {
    /// The in-process services, or the topology's over NATS when `NATS_URL` is set.
    async fn start(
        settings: &Settings,
        store: &Arc<dyn EventStore>,
        reads: &Database,
    ) -> anyhow::Result<Self> {
        match &settings.nats_url {
            None => {
                let projector =
                    Arc::new(Projector::new(reads.clone()).await.context("read models")?);
                let (progress, _) = watch::channel(projector.checkpoint().await?);
                let commands = Arc::new(
                    CommandService::new(store.clone()).with_edit_window(settings.edit_window),
                );
                Ok(Self::InProcess {
                    commands,
                    projector,
                    progress,
                })
            }
            Some(url) => {
                let topology = Topology::connect(url, &settings.nats_prefix).await?;
                let start = projection_service::queries::checkpoint(reads)
                    .await
                    .context("read models (is the projection-service running?)")?;
                let (progress, _) = watch::channel(start);
                Ok(Self::Remote { topology, progress })
            }
        }
    }

    /// Where commands go.
    fn commands(&self) -> Arc<dyn CommandBus> {
        match self {
            Self::InProcess { commands, .. } => commands.clone(),
            Self::Remote { topology, .. } => topology.commands(),
        }
    }

    /// Where a session's end goes: this gateway's sockets (`local`), or every gateway's.
    fn session_ends(&self, local: Arc<dyn SessionEnds>) -> Arc<dyn SessionEnds> {
        match self {
            Self::InProcess { .. } => local,
            Self::Remote { topology, .. } => topology.session_ends(local),
        }
    }

    /// This gateway's NATS connection, in the topology.
    fn nats(&self) -> Option<async_nats::Client> {
        match self {
            Self::InProcess { .. } => None,
            Self::Remote { topology, .. } => Some(topology.client.clone()),
        }
    }

    /// The read models' progress, for read-your-writes.
    fn progress(&self) -> watch::Receiver<Position> {
        match self {
            Self::InProcess { progress, .. } | Self::Remote { progress, .. } => {
                progress.subscribe()
            }
        }
    }
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
        settings.check_gateway()?;
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

        // The sockets are reached through the Socket.IO layer, built after the state it is given.
        let io_cell = Arc::new(OnceLock::new());
        let sockets = socket::LocalSockets::new(io_cell.clone());
        let local_ends: Arc<dyn SessionEnds> = Arc::new(sockets.clone());
        let services = Services::start(&settings, &store, &reads).await?;
        let nats = services.nats();
        let (presence, presence_tasks) = Presence::new(
            reads.clone(),
            io_cell.clone(),
            nats.clone()
                .map(|client| (client, settings.nats_prefix.as_str())),
        );

        let state = AppState {
            limiter: Arc::new(AuthRateLimiter::new(
                &settings.auth_rate_limit,
                settings.trust_proxy,
            )),
            limits: Arc::new(Limits::new(&settings.abuse)),
            settings: settings.clone(),
            auth: Arc::new(auth),
            mailer,
            commands: services.commands(),
            reads,
            store,
            consistency: Arc::new(Consistency::new(services.progress(), READ_YOUR_WRITES_WAIT)),
            origins: Arc::new(OriginSockets::default()),
            session_ends: services.session_ends(local_ends.clone()),
            nats,
            io_cell,
            requests: Arc::default(),
            presence,
            files: crate::files::FileStore::open(&settings.files_url)?,
        };
        let socket_layer = socket_layer(&state);
        let (stop_projector, stop) = watch::channel(false);
        let (projector, mut background) =
            start_background(&state, services, sockets, local_ends, stop).await?;
        background.extend(state.presence.start(presence_tasks).await?);
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
        let presence = self.state.presence.clone();
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
            presence.stop().await;
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
        if let Some(nats) = &self.state.nats {
            let _ = nats.flush().await;
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

/// The Socket.IO layer with its limits, its handlers registered; the state keeps its server.
fn socket_layer(state: &AppState) -> SocketIoLayer {
    let (layer, io) = SocketIo::builder()
        // Polling bodies (the engine's own limit) and WebSocket messages and frames.
        .max_payload(MAX_SOCKET_PAYLOAD as u64)
        .ws_max_message_size(MAX_SOCKET_PAYLOAD)
        .ws_max_frame_size(MAX_SOCKET_PAYLOAD)
        .with_parser(
            ParserConfig::common()
                .max_incoming_binary_buf_size(MAX_SOCKET_PAYLOAD)
                .max_incoming_binaries(MAX_BINARY_ATTACHMENTS)
                .packet_completion_timeout(ATTACHMENT_WAIT),
        )
        .max_buffer_size(socket::outbound::SEND_BUFFER)
        // A connection that opens no namespace is an unauthenticated one: let it go soon.
        .connect_timeout(CONNECT_WAIT)
        // Each WebSocket reads in chunks of this size and keeps the buffer: most frames are small.
        .ws_read_buffer_size(WS_READ_BUFFER)
        .with_state(state.clone())
        .build_layer();
    socket::register(&io);
    let _ = state.io_cell.set(io);
    layer
}

/// Starts the tasks beside the requests: delivery, the sweep of what no longer matters, and the
/// read models' side: the projector (all-in-one, returned apart so that a stop can wait for it)
/// or following the topology over NATS.
async fn start_background(
    state: &AppState,
    services: Services,
    sockets: socket::LocalSockets,
    local_ends: Arc<dyn SessionEnds>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<(Option<JoinHandle<anyhow::Result<()>>>, Vec<JoinHandle<()>>)> {
    let (applied_tx, applied_rx) = mpsc::channel(256);
    let mut background = vec![
        tokio::spawn(delivery::run(state.clone(), applied_rx)),
        tokio::spawn(sweep(state.clone())),
        tokio::spawn(crate::files::sweep(
            state.reads.clone(),
            state.files.clone(),
        )),
    ];
    let projector = match services {
        Services::InProcess {
            projector,
            progress,
            ..
        } => Some(tokio::spawn(projection_service::run(
            state.store.clone(),
            projector,
            progress,
            Some(applied_tx),
            stop,
        ))),
        Services::Remote { topology, progress } => {
            // Events missed and not read back: let every client go, so it reconnects and
            // fetches, rather than deliver with a hole.
            let give_up: GiveUp = Arc::new(move || {
                let sockets = sockets.clone();
                tokio::spawn(async move { sockets.disconnect_all().await });
            });
            let following = topology
                .follow(
                    state.reads.clone(),
                    local_ends,
                    give_up,
                    progress,
                    applied_tx,
                )
                .await?;
            background.extend(following);
            None
        }
    };
    Ok((projector, background))
}

/// Forgets rate-limit entries, delivery origins and read-your-writes marks that no longer matter.
async fn sweep(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        state.limiter.sweep();
        state.limits.sweep();
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
