//! The client events of this slice: account and search, self chat; and the on-connect events.

use std::future::Future;
use std::time::Duration;

use events_schema::{ChatId, Command, CommandOutcome, UserId};
use serde_json::{json, Value};
use socketioxide::extract::{SocketRef, TryData};
use uuid::Uuid;

use super::reply::{Failure, Reply};
use super::requests;
use super::SocketUser;
use crate::state::AppState;
use crate::wire::timestamp;
use projection_service::queries;

/// No request may hang: past this, the client gets an `internal` failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a successful request answers: an event to the requesting socket, and the ack's fields.
pub struct Answer {
    emit: Option<(&'static str, Value)>,
    ack: Value,
}

impl Answer {
    /// The event, with its payload also in the ack.
    fn event(name: &'static str, payload: Value) -> Self {
        Self {
            ack: payload.clone(),
            emit: Some((name, payload)),
        }
    }

    fn ack_only(fields: Value) -> Self {
        Self {
            emit: None,
            ack: fields,
        }
    }
}

/// What a handler gets.
pub struct Ctx {
    pub state: AppState,
    pub user: SocketUser,
    pub socket: SocketRef,
}

pub fn register(socket: &SocketRef, state: &AppState, user: &SocketUser) {
    on(
        socket,
        state,
        user,
        "fetch-user-details",
        fetch_user_details,
    );
    on(socket, state, user, "search-user", search_user);
    on(socket, state, user, "fetch-self-chat", fetch_self_chat);
    on(socket, state, user, "send-self-message", send_self_message);
}

/// Registers `handler` for `event`, answering it exactly once (ack or `request-failed`).
fn on<F, Fut>(
    socket: &SocketRef,
    state: &AppState,
    user: &SocketUser,
    event: &'static str,
    handler: F,
) where
    F: Fn(Ctx, Value) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Answer, Failure>> + Send + 'static,
{
    let state = state.clone();
    let user = user.clone();
    socket.on(
        event,
        move |socket: SocketRef, TryData(data): TryData<Value>, reply: Reply| {
            let ctx = Ctx {
                state: state.clone(),
                user: user.clone(),
                socket: socket.clone(),
            };
            async move {
                let result = match data {
                    Ok(payload) => tokio::time::timeout(REQUEST_TIMEOUT, handler(ctx, payload))
                        .await
                        .unwrap_or_else(|_| {
                            tracing::warn!(event, "request timed out");
                            Err(Failure::internal())
                        }),
                    Err(_) => Err(Failure::bad_request("unreadable payload")),
                };
                match result {
                    Ok(answer) => {
                        if let Some((name, payload)) = &answer.emit {
                            socket.emit(*name, payload).ok();
                        }
                        reply.ok(answer.ack);
                    }
                    Err(failure) => reply.fail(&socket, event, &failure),
                }
            }
        },
    );
}

fn internal(e: impl std::fmt::Display) -> Failure {
    tracing::error!(error = %e, "query failed");
    Failure::internal()
}

/// `user-id`, `personal-chat-list`, `group-chat-list`, in this order.
pub async fn send_on_connect(socket: &SocketRef, state: &AppState, user: &SocketUser) {
    socket
        .emit(
            "user-id",
            &json!({"userId": user.user_id, "userName": user.name}),
        )
        .ok();
    state.consistency.caught_up_for(&user.user_id).await;
    match chat_lists(state, &user.user_id).await {
        Ok((personal, groups)) => {
            socket.emit("personal-chat-list", &personal).ok();
            socket.emit("group-chat-list", &groups).ok();
        }
        Err(failure) => {
            socket
                .emit(
                    "request-failed",
                    &json!({"Event": "connect", "code": failure.code, "message": failure.message}),
                )
                .ok();
        }
    }
}

async fn chat_lists(state: &AppState, user: &UserId) -> Result<(Value, Value), Failure> {
    let personal = queries::personal_chat_list(&state.reads, user)
        .await
        .map_err(internal)?;
    let groups = queries::group_chat_list(&state.reads, user)
        .await
        .map_err(internal)?;
    let personal: Vec<Value> = personal
        .into_iter()
        .map(|c| {
            json!({
                "_id": c.chat_id,
                "Partner": c.partner_name,
                "PartnerId": c.partner_id,
                "LastChat": c.last_chat.map(timestamp),
                "Unread": c.unread,
            })
        })
        .collect();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|g| json!({"_id": g.chat_id, "Name": g.name, "LastChat": g.last_chat.map(timestamp), "Unread": g.unread}))
        .collect();
    Ok((
        json!({"PersonalChatList": personal}),
        json!({"GroupChatList": groups}),
    ))
}

async fn fetch_user_details(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    requests::nothing(&payload)?;
    let me = &ctx.user.user_id;
    ctx.state.consistency.caught_up_for(me).await;
    let name = queries::user(&ctx.state.reads, me)
        .await
        .map_err(internal)?
        .map(|u| u.name)
        .unwrap_or_else(|| ctx.user.name.clone());
    let emails = ctx
        .state
        .auth
        .email_of(std::slice::from_ref(me))
        .await
        .map_err(internal)?;
    let email = emails.get(me).cloned().unwrap_or_default();
    Ok(Answer::event(
        "user-details",
        json!({"Name": name, "Email": email, "Id": me}),
    ))
}

async fn search_user(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::search(&payload)?;
    let found = if request.name.trim().is_empty() {
        Vec::new()
    } else {
        queries::search_users(
            &ctx.state.reads,
            request.name.trim(),
            &ctx.user.user_id,
            request.purpose.limit(),
        )
        .await
        .map_err(internal)?
    };
    let ids: Vec<UserId> = found.iter().map(|u| u.id.clone()).collect();
    let emails = ctx.state.auth.email_of(&ids).await.map_err(internal)?;
    let users: Vec<Value> = found
        .into_iter()
        .map(|u| {
            let email = emails.get(&u.id).cloned().unwrap_or_default();
            json!({"_id": u.id, "Name": u.name, "Email": email})
        })
        .collect();
    Ok(Answer::event(
        request.purpose.answer_event(),
        json!({"Users": users}),
    ))
}

async fn fetch_self_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::page(&payload)?;
    let me = &ctx.user.user_id;
    ctx.state.consistency.caught_up_for(me).await;
    let chat = ChatId::self_chat_of(me);
    let page = queries::message_page(
        &ctx.state.reads,
        &chat,
        request.before.as_ref(),
        request.limit,
    )
    .await
    .map_err(|e| match e {
        queries::QueryError::UnknownMessage => {
            Failure::not_found("Before is not a message of this chat")
        }
        other => internal(other),
    })?;
    let messages: Vec<Value> = page
        .messages
        .into_iter()
        .map(|m| json!({"_id": m.id, "Content": m.content, "Timestamp": timestamp(m.sent_at)}))
        .collect();
    Ok(Answer::event(
        "self-chat",
        json!({"Messages": messages, "Name": ctx.user.name, "HasMore": page.has_more}),
    ))
}

async fn send_self_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::send_self(&payload)?;
    let correlation = Uuid::now_v7();
    ctx.state.origins.remember(correlation, ctx.socket.id);
    let command = Command::SendSelfMessage {
        content: request.content,
        client_id: request.client_id,
    };
    match ctx
        .state
        .dispatch(correlation, Some(ctx.user.user_id.clone()), command)
        .await
    {
        CommandOutcome::Accepted(accepted) => Ok(Answer::ack_only(json!({
            "MessageId": accepted.message_id,
            "ChatId": ChatId::self_chat_of(&ctx.user.user_id),
            "Timestamp": accepted.occurred_at.map(timestamp),
        }))),
        CommandOutcome::Refused { code, message } => {
            ctx.state.origins.take(&correlation);
            Err(Failure::refused(code, message))
        }
    }
}
