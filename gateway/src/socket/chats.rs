//! Personal chats and groups (PROTOCOL.md §3.3). Commands go to the command-service, which decides
//! them against the chat's aggregate; queries read the projections after waiting for the log head,
//! and check membership there. Deliveries to other users' sockets come from the events
//! (`crate::delivery`), not from here.

use events_schema::{Accepted, ChatId, ChatKind, Command, CommandOutcome, UserId};
use projection_service::queries::{self, ChatView, Kind, MemberView, MessageView};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::handlers::{internal, Answer, Ctx};
use super::reply::Failure;
use super::requests;
use crate::wire::timestamp;

/// Sends a command for the socket's user, remembering the socket so deliveries skip it.
pub(super) async fn command(ctx: &Ctx, command: Command) -> Result<Accepted, Failure> {
    let correlation = Uuid::now_v7();
    ctx.state.origins.remember(correlation, ctx.socket.id);
    match ctx
        .state
        .dispatch(correlation, Some(ctx.user.user_id.clone()), command)
        .await
    {
        CommandOutcome::Accepted(accepted) => Ok(accepted),
        CommandOutcome::Refused { code, message } => {
            ctx.state.origins.take(&correlation);
            Err(Failure::refused(code, message))
        }
    }
}

fn query_failed(e: queries::QueryError) -> Failure {
    match e {
        queries::QueryError::UnknownMessage => {
            Failure::not_found("Before is not a message of this chat")
        }
        other => internal(other),
    }
}

/// The chat, if it exists, is of `kind`, is not deleted and has the user as a member; with its
/// members. Waits for the log head first, so the answer reflects every acknowledged change.
async fn readable(
    ctx: &Ctx,
    chat: &ChatId,
    kind: Kind,
) -> Result<(ChatView, Vec<MemberView>), Failure> {
    ctx.state
        .consistency
        .caught_up_to_head(ctx.state.store.as_ref())
        .await;
    let view = queries::chat(&ctx.state.reads, chat)
        .await
        .map_err(query_failed)?
        .filter(|c| c.kind == kind && !c.deleted)
        .ok_or_else(|| Failure::not_found("no such chat"))?;
    let members = queries::members(&ctx.state.reads, chat)
        .await
        .map_err(query_failed)?;
    if !members.iter().any(|m| m.id == ctx.user.user_id) {
        return Err(Failure::forbidden("not a member of this chat"));
    }
    Ok((view, members))
}

/// `ReadStatus`: each current member's id → "Read" or "Unread" for one message.
fn read_status(members: &[MemberView], message: &MessageView) -> Value {
    let map: Map<String, Value> = members
        .iter()
        .map(|m| {
            let read = m.id == message.sender_id || m.read_version >= message.version as i64;
            (
                m.id.to_string(),
                json!(if read { "Read" } else { "Unread" }),
            )
        })
        .collect();
    Value::Object(map)
}

/// The acknowledgement of a stored message: `{MessageId, ChatId, Timestamp}`.
pub(super) fn sent_ack(accepted: &Accepted) -> Value {
    json!({
        "MessageId": accepted.message_id,
        "ChatId": accepted.chat_id,
        "Timestamp": accepted.occurred_at.map(timestamp),
    })
}

async fn name_of(ctx: &Ctx, user: &UserId) -> Result<String, Failure> {
    Ok(queries::user(&ctx.state.reads, user)
        .await
        .map_err(query_failed)?
        .map(|u| u.name)
        .unwrap_or_default())
}

/// `check-chat {Receiver}` → `create-chat-result`.
pub async fn check_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let receiver = requests::receiver(&payload)?;
    ctx.state.consistency.caught_up_for(&ctx.user.user_id).await;
    let partner = queries::user(&ctx.state.reads, &receiver)
        .await
        .map_err(query_failed)?
        .filter(|u| u.verified)
        .ok_or_else(|| Failure::not_found("no such user"))?;
    let chat_id = ChatId::personal_between(&ctx.user.user_id, &receiver);
    let exists = queries::chat(&ctx.state.reads, &chat_id)
        .await
        .map_err(query_failed)?
        .is_some_and(|c| c.kind == Kind::Personal);
    let answer = if exists {
        json!({"Exists": 1, "ChatId": chat_id, "Partner": partner.name, "PartnerId": receiver})
    } else {
        json!({"Exists": 0, "Partner": partner.name, "PartnerId": receiver})
    };
    Ok(Answer::event("create-chat-result", answer))
}

/// `create-personal-chat {Receiver}` → `create-personal-chat-creator {ChatId, Partner}`.
pub async fn create_personal_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let receiver = requests::receiver(&payload)?;
    let accepted = command(
        &ctx,
        Command::CreatePersonalChat {
            partner: receiver.clone(),
        },
    )
    .await?;
    let partner = name_of(&ctx, &receiver).await?;
    Ok(Answer::event(
        "create-personal-chat-creator",
        json!({"ChatId": accepted.chat_id, "Partner": partner, "PartnerId": receiver}),
    ))
}

/// `fetch-personal-chat {ChatId, Before?, Limit?}` → `personal-chat`.
pub async fn fetch_personal_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat, page) = requests::chat_page(&payload, "ChatId")?;
    let (_, members) = readable(&ctx, &chat, Kind::Personal).await?;
    let found = queries::message_page(&ctx.state.reads, &chat, page.before.as_ref(), page.limit)
        .await
        .map_err(query_failed)?;
    let me = &ctx.user.user_id;
    let partner = members.iter().find(|m| &m.id != me);
    let messages: Vec<Value> = found
        .messages
        .iter()
        .map(|m| {
            json!({
                "_id": m.id,
                "Sender": m.sender_id,
                "Content": m.content,
                "ReadStatus": read_status(&members, m),
                "Timestamp": timestamp(m.sent_at),
            })
        })
        .collect();
    let my_name = members
        .iter()
        .find(|m| &m.id == me)
        .map(|m| m.name.clone())
        .unwrap_or_default();
    Ok(Answer::event(
        "personal-chat",
        json!({
            "Messages": messages,
            "UserId": me,
            "User": my_name,
            "Partner": partner.map(|p| p.name.clone()),
            "PartnerId": partner.map(|p| p.id.clone()),
            "HasMore": found.has_more,
        }),
    ))
}

/// `send-personal-message {ChatId, Content, ClientId?}`: the ack; deliveries go to the partner and
/// the sender's other sockets.
pub async fn send_personal_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, send) = requests::send_to(&payload, "ChatId")?;
    let send = Command::SendMessage {
        chat_id,
        kind: ChatKind::Personal,
        content: send.content,
        client_id: send.client_id,
    };
    Ok(Answer::ack_only(sent_ack(&command(&ctx, send).await?)))
}

/// `read-personal-message {ChatId}`.
pub async fn read_personal_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let chat_id = requests::chat(&payload, "ChatId")?;
    command(
        &ctx,
        Command::MarkRead {
            chat_id: chat_id.clone(),
            kind: ChatKind::Personal,
        },
    )
    .await?;
    Ok(Answer::ack_only(json!({"ChatId": chat_id})))
}

/// `create-group-chat {Name, Description, Participants}` → `create-group-chat-creator`.
pub async fn create_group_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::create_group(&payload)?;
    let group_id = ChatId::generate();
    let name = request.name.as_str().to_owned();
    command(
        &ctx,
        Command::CreateGroup {
            group_id: group_id.clone(),
            name: request.name,
            description: request.description,
            participants: request.participants,
        },
    )
    .await?;
    Ok(Answer::event(
        "create-group-chat-creator",
        json!({"GroupId": group_id, "Name": name}),
    ))
}

/// `fetch-group-chat {GroupId, Before?, Limit?}` → `group-chat`.
pub async fn fetch_group_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat, page) = requests::chat_page(&payload, "GroupId")?;
    let (view, members) = readable(&ctx, &chat, Kind::Group).await?;
    let found = queries::message_page(&ctx.state.reads, &chat, page.before.as_ref(), page.limit)
        .await
        .map_err(query_failed)?;
    // Senders who have left are named too.
    let mut senders: Vec<UserId> = found.messages.iter().map(|m| m.sender_id.clone()).collect();
    senders.sort();
    senders.dedup();
    let names = queries::names(&ctx.state.reads, &senders)
        .await
        .map_err(query_failed)?;
    let messages: Vec<Value> = found
        .messages
        .iter()
        .map(|m| {
            json!({
                "Id": m.id,
                "_id": m.id,
                "Sender": names.get(&m.sender_id).cloned().unwrap_or_default(),
                "SenderId": m.sender_id,
                "Content": m.content,
                "ReadStatus": read_status(&members, m),
                "Timestamp": timestamp(m.sent_at),
            })
        })
        .collect();
    let participants: Map<String, Value> = members
        .iter()
        .map(|m| (m.id.to_string(), json!(m.name)))
        .collect();
    Ok(Answer::event(
        "group-chat",
        json!({
            "GroupId": view.id,
            "Admin": view.admin,
            "Name": view.name,
            "Description": view.description,
            "Participants": participants,
            "Messages": messages,
            "HasMore": found.has_more,
        }),
    ))
}

/// `send-group-message {GroupId, Content, ClientId?}`: the ack; other members get
/// `receive-group-message`.
pub async fn send_group_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, send) = requests::send_to(&payload, "GroupId")?;
    let send = Command::SendMessage {
        chat_id,
        kind: ChatKind::Group,
        content: send.content,
        client_id: send.client_id,
    };
    Ok(Answer::ack_only(sent_ack(&command(&ctx, send).await?)))
}

/// `read-group-message {GroupId}`.
pub async fn read_group_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let chat_id = requests::chat(&payload, "GroupId")?;
    command(
        &ctx,
        Command::MarkRead {
            chat_id: chat_id.clone(),
            kind: ChatKind::Group,
        },
    )
    .await?;
    Ok(Answer::ack_only(json!({"GroupId": chat_id})))
}

/// `add-member {GroupId, Member}`: failures also answer `add-member-fail {Message}`.
pub async fn add_member(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, member) =
        requests::group_member(&payload).map_err(|f| f.with_legacy("add-member-fail"))?;
    command(
        &ctx,
        Command::AddMember {
            chat_id: chat_id.clone(),
            member: member.clone(),
        },
    )
    .await
    .map_err(|f| f.with_legacy("add-member-fail"))?;
    Ok(Answer::ack_only(
        json!({"GroupId": chat_id, "Member": member}),
    ))
}

/// `kickout {GroupId, Member}` → `kickout-successful {GroupId}`.
pub async fn kickout(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, member) = requests::group_member(&payload)?;
    command(
        &ctx,
        Command::KickMember {
            chat_id: chat_id.clone(),
            member: member.clone(),
        },
    )
    .await?;
    Ok(Answer::event(
        "kickout-successful",
        json!({"GroupId": chat_id, "Member": member}),
    ))
}

/// `change-admin {GroupId, Member}` → `change-admin-success-creator {GroupId}`.
pub async fn change_admin(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, member) = requests::group_member(&payload)?;
    command(
        &ctx,
        Command::ChangeAdmin {
            chat_id: chat_id.clone(),
            member: member.clone(),
        },
    )
    .await?;
    Ok(Answer::event(
        "change-admin-success-creator",
        json!({"GroupId": chat_id, "Admin": member}),
    ))
}

/// `leave-grp {GroupId}` → `group-left-success {Message, GroupId}`; failures also answer
/// `group-left-fail {Message}`.
pub async fn leave_group(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let chat_id =
        requests::chat(&payload, "GroupId").map_err(|f| f.with_legacy("group-left-fail"))?;
    command(
        &ctx,
        Command::LeaveGroup {
            chat_id: chat_id.clone(),
        },
    )
    .await
    .map_err(|f| f.with_legacy("group-left-fail"))?;
    Ok(Answer::event(
        "group-left-success",
        json!({"Message": "You left the group", "GroupId": chat_id}),
    ))
}

/// `delete-grp {GroupId}` → `delete-group-chat-creator {GroupId}`.
pub async fn delete_group(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let chat_id = requests::chat(&payload, "GroupId")?;
    command(
        &ctx,
        Command::DeleteGroup {
            chat_id: chat_id.clone(),
        },
    )
    .await?;
    Ok(Answer::event(
        "delete-group-chat-creator",
        json!({"GroupId": chat_id}),
    ))
}
