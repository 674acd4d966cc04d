//! Session ends across gateways: a session ended on one gateway (logout, a spent refresh token, a
//! replaced password) is announced on core NATS, and every gateway, the announcing one included,
//! ends the session's sockets it holds.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::auth::SessionId;
use crate::state::SessionEnds;

/// The announcement, between gateways.
#[derive(Serialize, Deserialize)]
struct SessionEnded {
    session: String,
    reason: String,
}

/// Ends sessions by announcing them to every gateway.
pub(super) struct Announced {
    client: async_nats::Client,
    subject: String,
    /// This gateway's own sockets, when the announcement cannot be sent.
    local: Arc<dyn SessionEnds>,
}

impl Announced {
    pub(super) fn new(
        client: &async_nats::Client,
        prefix: &str,
        local: Arc<dyn SessionEnds>,
    ) -> Self {
        Self {
            client: client.clone(),
            subject: infra::subjects::sessions_ended(prefix),
            local,
        }
    }

    async fn announce(&self, session: &SessionId, reason: &str) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&SessionEnded {
            session: session.as_str().to_owned(),
            reason: reason.to_owned(),
        })?;
        self.client
            .publish(self.subject.clone(), body.into())
            .await?;
        Ok(())
    }
}

#[async_trait]
impl SessionEnds for Announced {
    async fn end(&self, session: &SessionId, reason: &str) {
        match self.announce(session, reason).await {
            // This gateway hears it too, and ends its own sockets then.
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell the other gateways that a session ended");
                self.local.end(session, reason).await
            }
        }
    }
}

/// Ends, on this gateway, the sessions any gateway ended.
pub(super) async fn end_announced(
    mut announcements: async_nats::Subscriber,
    local: Arc<dyn SessionEnds>,
) {
    while let Some(message) = announcements.next().await {
        match serde_json::from_slice::<SessionEnded>(&message.payload) {
            Ok(ended) => {
                local
                    .end(&SessionId::from_stored(ended.session), &ended.reason)
                    .await
            }
            Err(e) => tracing::debug!(error = %e, "unreadable session announcement ignored"),
        }
    }
}
