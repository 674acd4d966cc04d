//! The sockets this gateway holds, as the rest of the gateway may act on them: a session's end,
//! and letting everyone go.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use socketioxide::SocketIo;

use super::rooms::session_room;
use crate::auth::SessionId;
use crate::state::SessionEnds;
use crate::wire::AuthFailure;

/// This gateway's sockets.
#[derive(Clone)]
pub struct LocalSockets {
    /// Set once the Socket.IO layer is built (after the state it is built with).
    io: Arc<OnceLock<SocketIo>>,
}

impl LocalSockets {
    pub fn new(io: Arc<OnceLock<SocketIo>>) -> Self {
        Self { io }
    }

    /// Disconnects every socket of this gateway (their clients reconnect and fetch).
    pub async fn disconnect_all(&self) {
        let Some(io) = self.io.get() else { return };
        if let Err(e) = io.disconnect().await {
            tracing::debug!(error = %e, "disconnecting every socket");
        }
    }
}

#[async_trait]
impl SessionEnds for LocalSockets {
    /// Ends a session's sockets on this gateway: `auth-failure` then disconnect.
    async fn end(&self, session: &SessionId, reason: &str) {
        let Some(io) = self.io.get() else { return };
        let room = session_room(session);
        if let Err(e) = io
            .to(room.clone())
            .emit("auth-failure", &AuthFailure { reason })
            .await
        {
            tracing::debug!(error = %e, "auth-failure broadcast");
        }
        if let Err(e) = io.to(room).disconnect().await {
            tracing::debug!(error = %e, "disconnecting a session's sockets");
        }
    }
}
