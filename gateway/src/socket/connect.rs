//! A socket's arrival: the handshake's verdict, the per-user and per-address socket limits, and
//! the on-connect events (`access-token` when one was minted, `user-id`, `personal-chat-list`,
//! `group-chat-list`), sent before any request of the socket is handled.
//!
//! Authentication runs as a connect middleware, before socket.io's CONNECT packet is sent, and
//! never fails there: it records its verdict in the socket's extensions. The connect handler then
//! either registers the event handlers (synchronously, before anything else, so no early client
//! event is lost) and sends the on-connect events, or emits `auth-failure` and disconnects without
//! registering any handler, so none of that socket's events is acted on.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::ConnectInfo;
use events_schema::UserId;
use infra::backoff::Backoff;
use projection_service::queries;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;

use super::budget;
use super::handler::internal;
use super::handshake;
use super::outbound;
use super::reply::Failure;
use super::rooms::{session_room, user_room, SocketUser};
use super::router;
use crate::state::AppState;
use crate::wire::{
    timestamp, AccessToken, AuthFailure, GroupChatEntry, GroupChatList, PersonalChatEntry,
    PersonalChatList, UserIdentity,
};

/// How long the on-connect lists may take, retries included, before the socket is let go.
const ON_CONNECT_PATIENCE: Duration = Duration::from_secs(30);
/// The pause before the lists are read again; each failure doubles it, up to
/// [`ON_CONNECT_MAX_PAUSE`].
const ON_CONNECT_FIRST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between two reads of the lists.
const ON_CONNECT_MAX_PAUSE: Duration = Duration::from_secs(2);

/// The handshake's verdict, kept in the socket's extensions.
#[derive(Debug, Clone)]
enum Verdict {
    Accepted {
        user: SocketUser,
        fresh_access: Option<String>,
    },
    Refused(&'static str),
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
        socket.emit("auth-failure", &AuthFailure { reason }).ok();
        socket.disconnect().ok();
        return;
    };
    let slot = match state
        .limits
        .admit_socket(&user.user_id, client_address(&state, &socket))
    {
        Ok(slot) => slot,
        Err(over) => {
            tracing::debug!(sid = %socket.id, user = %user.user_id, reason = over.message(), "socket refused");
            let failure = Failure::rate_limited_because(over.message());
            socket
                .emit("request-failed", &failure.request_failed("connect"))
                .ok();
            socket.disconnect().ok();
            return;
        }
    };
    socket.join(user_room(&user.user_id));
    socket.join(session_room(&user.session_id));
    tracing::debug!(sid = %socket.id, user = %user.user_id, "socket connected");
    state.presence.connected(&user.user_id);
    {
        let user = user.user_id.clone();
        socket.on_disconnect(move |socket: SocketRef, State(state): State<AppState>| {
            state.presence.disconnected(&user, socket.id);
            std::future::ready(())
        });
    }
    let greeting = {
        let (socket, state, user) = (socket.clone(), state.clone(), user.clone());
        async move {
            // The session may have ended while the handshake ran (logout racing a reconnect).
            if !matches!(state.auth.session_active(&user.session_id).await, Ok(true)) {
                socket
                    .emit(
                        "auth-failure",
                        &AuthFailure {
                            reason: "session ended",
                        },
                    )
                    .ok();
                socket.disconnect().ok();
                return false;
            }
            if let Some(access) = fresh_access {
                let token = AccessToken {
                    access_token: &access,
                };
                outbound::emit(&socket, "access-token", &token);
            }
            send_on_connect(&socket, &state, &user).await;
            send_presence(&socket, &state, &user).await;
            true
        }
    };
    // Handlers are registered before this function returns, so no early client event is lost;
    // they are answered after the greeting.
    router::register(&socket, &user, slot, greeting);
}

/// The client's address: the TCP peer, or behind a trusted proxy the last hop of
/// `X-Forwarded-For`.
fn client_address(state: &AppState, socket: &SocketRef) -> IpAddr {
    let parts = socket.req_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |info| info.0);
    state.limiter.client_ip(peer, &parts.headers)
}

/// `user-id`, `personal-chat-list`, `group-chat-list`, in this order.
async fn send_on_connect(socket: &SocketRef, state: &AppState, user: &SocketUser) {
    outbound::emit(
        socket,
        "user-id",
        &UserIdentity {
            user_id: &user.user_id,
            user_name: &user.name,
        },
    );
    state.consistency.caught_up_for(&user.user_id).await;
    // A client without its lists is stuck, so a failure to read them (typically the database pool
    // running dry when thousands of clients reconnect at once) is retried with back-off for a
    // while; only then is the client told and let go, so that it reconnects.
    let deadline = tokio::time::Instant::now() + ON_CONNECT_PATIENCE;
    let mut pauses = Backoff::new(ON_CONNECT_FIRST_PAUSE, ON_CONNECT_MAX_PAUSE);
    loop {
        let failure = match chat_lists(state, &user.user_id).await {
            Ok((personal, groups)) => {
                outbound::emit(socket, "personal-chat-list", &personal);
                outbound::emit(socket, "group-chat-list", &groups);
                return;
            }
            Err(failure) => failure,
        };
        let pause = pauses.next();
        if tokio::time::Instant::now() + pause >= deadline {
            socket
                .emit("request-failed", &failure.request_failed("connect"))
                .ok();
            socket.clone().disconnect().ok();
            return;
        }
        tokio::time::sleep(pause).await;
    }
}

/// `presence`: the user's contacts, online or when last seen (after the chat lists).
async fn send_presence(socket: &SocketRef, state: &AppState, user: &SocketUser) {
    match state.presence.list(&user.user_id).await {
        Ok(list) => outbound::emit(socket, "presence", &list),
        // Presence is a courtesy: a client without it still chats, and hears of changes.
        Err(e) => tracing::warn!(user = %user.user_id, error = %e, "presence list unavailable"),
    }
}

async fn chat_lists(
    state: &AppState,
    user: &UserId,
) -> Result<(PersonalChatList, GroupChatList), Failure> {
    let personal = queries::personal_chat_list(&state.reads, user)
        .await
        .map_err(internal)?;
    let groups = queries::group_chat_list(&state.reads, user)
        .await
        .map_err(internal)?;
    let chats = personal
        .into_iter()
        .take(budget::CHAT_LIST_MAX)
        .map(|c| PersonalChatEntry {
            last_chat: c.last_chat.map(timestamp),
            partner: c.partner_name,
            partner_id: c.partner_id,
            unread: c.unread,
            id: c.chat_id,
        })
        .collect();
    let groups = groups
        .into_iter()
        .take(budget::CHAT_LIST_MAX)
        .map(|g| GroupChatEntry {
            last_chat: g.last_chat.map(timestamp),
            name: g.name,
            unread: g.unread,
            id: g.chat_id,
        })
        .collect();
    Ok((PersonalChatList { chats }, GroupChatList { groups }))
}
