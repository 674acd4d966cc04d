//! Groups: created with their participants, administered by one member (docs/api.md, "Groups").
//! Commands go to the command-service, which decides them against the group's aggregate; queries
//! read the projections after waiting for the log head, and check membership there. Deliveries to
//! the other members' sockets come from the events (`crate::delivery`), not from here.

use events_schema::{ChatId, ChatKind, Command, UserId};
use projection_service::queries::{self, Kind};
use serde_json::Value;

use super::budget;
use super::chat_view::{edited_at, reactions, read_status, readable, receipts};
use super::handler::{command, query_failed, spend, Answer, Ctx};
use super::reply::Failure;
use super::requests;
use crate::limits::Budget;
use crate::wire::{
    timestamp, AdminChanged, GroupChat, GroupCreated, GroupDeleted, GroupLeft, GroupMessage,
    GroupRead, Kicked, MemberAdded, Sent,
};

/// `create-group-chat {Name, Description, Participants}` → `create-group-chat-creator`.
pub async fn create_group_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::create_group(&payload)?;
    spend(&ctx, Budget::Creation)?;
    let group_id = ChatId::generate();
    let created_name = request.name.as_str().to_owned();
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
    let created = GroupCreated {
        group_id: &group_id,
        name: &created_name,
    };
    Answer::event("create-group-chat-creator", &created)
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
    let mut messages: Vec<GroupMessage> = found
        .messages
        .into_iter()
        .map(|mut m| GroupMessage {
            read_status: read_status(&members, &m),
            timestamp: timestamp(m.sent_at),
            edited_at: edited_at(&m),
            reactions: reactions(&mut m),
            deleted: m.deleted,
            attachments: std::mem::take(&mut m.attachments),
            reply_to: m.reply_to.clone(),
            sender: names.get(&m.sender_id).cloned().unwrap_or_default(),
            sender_id: m.sender_id,
            content: m.content,
            id: m.id.clone(),
            underscore_id: m.id,
        })
        .collect();
    let has_more = budget::fit_page(&mut messages, found.has_more);
    let participants = members
        .into_iter()
        .map(|m| (m.id.to_string(), m.name))
        .collect();
    let page = GroupChat {
        admin: view.admin,
        description: view.description,
        group_id: view.id,
        has_more,
        messages,
        name: view.name,
        participants,
        receipts: receipts(&ctx, &chat).await?,
    };
    Answer::event("group-chat", &page)
}

/// `send-group-message {GroupId, Content, ClientId?}`: the ack; other members get
/// `receive-group-message`.
pub async fn send_group_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let send = requests::send_to(&payload, "GroupId")?;
    let attachments = super::attachments::of_request(&ctx, &payload).await?;
    let send = Command::SendMessage {
        chat_id: send.chat_id,
        kind: ChatKind::Group,
        content: send.content,
        client_id: send.client_id,
        reply_to: send.reply_to,
        attachments,
    };
    Answer::ack_only(&Sent::from(&command(&ctx, send).await?))
}

/// `read-group-message {GroupId, UpTo?}`: the ack; the other members get `read-grp-msg-ack` and
/// `receipt`.
pub async fn read_group_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, up_to) = requests::read(&payload, "GroupId")?;
    command(
        &ctx,
        Command::MarkRead {
            chat_id: chat_id.clone(),
            kind: ChatKind::Group,
            up_to,
        },
    )
    .await?;
    Answer::ack_only(&GroupRead { group_id: &chat_id })
}

/// `add-member {GroupId, Member}`: failures also answer `add-member-fail {Message}`.
pub async fn add_member(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat_id, member) =
        requests::group_member(&payload).map_err(|f| f.with_legacy("add-member-fail"))?;
    spend(&ctx, Budget::Addition).map_err(|f| f.with_legacy("add-member-fail"))?;
    command(
        &ctx,
        Command::AddMember {
            chat_id: chat_id.clone(),
            member: member.clone(),
        },
    )
    .await
    .map_err(|f| f.with_legacy("add-member-fail"))?;
    let added = MemberAdded {
        group_id: &chat_id,
        member: &member,
    };
    Answer::ack_only(&added)
}

/// `kickout {GroupId, Member}` → `kickout-successful {GroupId, Member}`.
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
    let kicked = Kicked {
        group_id: &chat_id,
        member: &member,
    };
    Answer::event("kickout-successful", &kicked)
}

/// `change-admin {GroupId, Member}` → `change-admin-success-creator {GroupId, Admin}`.
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
    let changed = AdminChanged {
        admin: &member,
        group_id: &chat_id,
    };
    Answer::event("change-admin-success-creator", &changed)
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
    let left = GroupLeft {
        group_id: &chat_id,
        message: "You left the group",
    };
    Answer::event("group-left-success", &left)
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
    Answer::event(
        "delete-group-chat-creator",
        &GroupDeleted { group_id: &chat_id },
    )
}
