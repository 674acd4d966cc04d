//! Socket.IO (PROTOCOL.md §3): the handshake, the on-connect events, and the client events.
//!
//! Authentication runs as a connect middleware, before socket.io's CONNECT packet is sent, and
//! never fails there: it records its verdict in the socket's extensions. The connect handler then
//! either registers the event handlers (synchronously, before anything else, so no early client
//! event is lost) and sends the on-connect events, or emits `auth-failure` and disconnects without
//! registering any handler, so none of that socket's events is acted on.

mod chats;
pub mod drain;
mod handlers;
mod handshake;
pub mod outbound;
mod reply;
mod requests;

use std::convert::Infallible;

use events_schema::UserId;
use serde_json::json;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;

use crate::auth::SessionId;
use crate::state::AppState;

pub use reply::Failure;

/// Who a connected socket belongs to.
#[derive(Debug, Clone)]
pub struct SocketUser {
    pub user_id: UserId,
    pub name: String,
    pub session_id: SessionId,
}

/// The handshake's verdict, kept in the socket's extensions.
#[derive(Debug, Clone)]
enum Verdict {
    Accepted {
        user: SocketUser,
        fresh_access: Option<String>,
    },
    Refused(&'static str),
}

/// The room of every socket of a user.
pub fn user_room(user: &UserId) -> String {
    format!("user:{user}")
}

/// The room of every socket opened with one session (for logout).
pub fn session_room(session: &SessionId) -> String {
    format!("session:{session}")
}

/// Registers the default namespace.
pub fn register(io: &SocketIo) {
    io.ns("/", on_connect.with(authenticate));
}

async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<serde_json::Value>,
    State(state): State<AppState>,
) -> Result<(), Infallible> {
    let verdict = match handshake::authenticate(&state, &socket, auth.ok()).await {
        Ok((user, fresh_access)) => Verdict::Accepted { user, fresh_access },
        Err(reason) => {
            tracing::debug!(sid = %socket.id, reason, "handshake refused");
            Verdict::Refused(reason)
        }
    };
    socket.extensions.insert(verdict);
    Ok(())
}

async fn on_connect(socket: SocketRef, State(state): State<AppState>) {
    // Taken out, not copied: the handlers keep their own copy of the user, for the socket's life.
    let verdict = socket.extensions.remove::<Verdict>();
    let Some(Verdict::Accepted { user, fresh_access }) = verdict else {
        let reason = match verdict {
            Some(Verdict::Refused(reason)) => reason,
            _ => "not authenticated",
        };
        socket.emit("auth-failure", &json!({"reason": reason})).ok();
        socket.disconnect().ok();
        return;
    };
    socket.join(user_room(&user.user_id));
    socket.join(session_room(&user.session_id));
    tracing::debug!(sid = %socket.id, user = %user.user_id, "socket connected");
    let greeting = {
        let (socket, state, user) = (socket.clone(), state.clone(), user.clone());
        async move {
            // The session may have ended while the handshake ran (logout racing a reconnect).
            if !matches!(state.auth.session_active(&user.session_id).await, Ok(true)) {
                socket
                    .emit("auth-failure", &json!({"reason": "session ended"}))
                    .ok();
                socket.disconnect().ok();
                return false;
            }
            if let Some(access) = fresh_access {
                outbound::emit(&socket, "access-token", &json!({"accessToken": access}));
            }
            handlers::send_on_connect(&socket, &state, &user).await;
            true
        }
    };
    // Handlers are registered before this function returns, so no early client event is lost;
    // they are answered after the greeting.
    handlers::register(&socket, &user, greeting);
}

impl AppState {
    /// Ends a session's sockets wherever they are connected: on this node, or through NATS on
    /// every gateway of the topology (this one included).
    pub async fn end_session(&self, session: &SessionId, reason: &str) {
        if let Some(cluster) = &self.cluster {
            match cluster.end_session(session, reason).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell the other gateways that a session ended")
                }
            }
        }
        self.end_local_session(session, reason).await
    }

    /// Ends a session's sockets on this node: `auth-failure` then disconnect.
    pub async fn end_local_session(&self, session: &SessionId, reason: &str) {
        let Some(io) = self.io() else { return };
        let room = session_room(session);
        if let Err(e) = io
            .to(room.clone())
            .emit("auth-failure", &json!({"reason": reason}))
            .await
        {
            tracing::debug!(error = %e, "auth-failure broadcast");
        }
        if let Err(e) = io.to(room).disconnect().await {
            tracing::debug!(error = %e, "disconnecting a session's sockets");
        }
    }
}
