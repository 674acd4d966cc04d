//! Commands: what the gateway asks the command-service to decide, and the typed outcome it answers
//! with. Commands travel in-process (all-in-one) or as JSON over NATS, so they are part of the
//! contract too.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::emoji::Emoji;
use crate::envelope::Position;
use crate::events::AttachmentShared;
use crate::ids::{ChatId, MessageId, UserId};
use crate::values::{ClientId, Content, Description, GroupName, UserName};

/// A command with who asks and the request it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandEnvelope {
    /// One per client request; every event the command writes carries it.
    pub correlation_id: Uuid,
    /// The acting user; `None` for the system (sign-up and verification act for a user not yet
    /// logged in).
    pub actor: Option<UserId>,
    pub command: Command,
    /// The W3C trace context (`traceparent`) of the request, when it is traced. It travels in
    /// the envelope rather than in a NATS header because one request may carry a batch of
    /// commands, each of its own trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<String>,
}

/// Everything the command-service can be asked to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Command {
    /// A new account signed up.
    #[serde(rename_all = "camelCase")]
    RegisterUser { user_id: UserId, name: UserName },
    /// An unverified account signed up again, possibly with another name.
    #[serde(rename_all = "camelCase")]
    RenameUser { user_id: UserId, name: UserName },
    /// The account's e-mail was verified: the user becomes visible and gets a self chat.
    #[serde(rename_all = "camelCase")]
    VerifyUser { user_id: UserId },
    /// A note to self, from the acting user.
    #[serde(rename_all = "camelCase")]
    SendSelfMessage {
        content: Content,
        client_id: Option<ClientId>,
        /// Files the sender uploaded, checked by the gateway before it sends the command.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentShared>,
    },
    /// The one personal chat of the acting user and `partner` (created if it does not exist).
    #[serde(rename_all = "camelCase")]
    CreatePersonalChat { partner: UserId },
    /// A new group with the acting user as admin; `group_id` is chosen by the caller.
    #[serde(rename_all = "camelCase")]
    CreateGroup {
        group_id: ChatId,
        name: GroupName,
        description: Description,
        participants: Vec<UserId>,
    },
    /// A message to a personal chat or a group the acting user is a member of.
    #[serde(rename_all = "camelCase")]
    SendMessage {
        chat_id: ChatId,
        kind: ChatKind,
        content: Content,
        client_id: Option<ClientId>,
        /// A message of the same chat this one answers. Absent in commands from before replies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<MessageId>,
        /// Files the sender uploaded, checked by the gateway before it sends the command.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentShared>,
    },
    /// The sender changes the text of their message.
    #[serde(rename_all = "camelCase")]
    EditMessage {
        chat_id: ChatId,
        message_id: MessageId,
        content: Content,
    },
    /// The sender, or a group's admin, deletes a message.
    #[serde(rename_all = "camelCase")]
    DeleteMessage {
        chat_id: ChatId,
        message_id: MessageId,
    },
    /// The acting user reacts to a message with `emoji` (`on`), or takes the reaction back.
    #[serde(rename_all = "camelCase")]
    React {
        chat_id: ChatId,
        message_id: MessageId,
        emoji: Emoji,
        on: bool,
    },
    /// The acting user has read everything in the chat so far, or up to `up_to`.
    #[serde(rename_all = "camelCase")]
    MarkRead {
        chat_id: ChatId,
        kind: ChatKind,
        /// Read up to this message only (never back); absent: everything so far. Absent in
        /// commands from before receipts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        up_to: Option<MessageId>,
    },
    /// The acting user's devices have received the chat up to `up_to` (never back).
    #[serde(rename_all = "camelCase")]
    MarkDelivered { chat_id: ChatId, up_to: MessageId },
    /// The admin adds a member.
    #[serde(rename_all = "camelCase")]
    AddMember { chat_id: ChatId, member: UserId },
    /// The admin kicks a member out.
    #[serde(rename_all = "camelCase")]
    KickMember { chat_id: ChatId, member: UserId },
    /// The admin hands the group over to another member.
    #[serde(rename_all = "camelCase")]
    ChangeAdmin { chat_id: ChatId, member: UserId },
    /// The acting user leaves a group (the admin may not).
    #[serde(rename_all = "camelCase")]
    LeaveGroup { chat_id: ChatId },
    /// The admin deletes a group.
    #[serde(rename_all = "camelCase")]
    DeleteGroup { chat_id: ChatId },
    /// The acting user shows themselves to their contacts as online (`visible`) or hides.
    #[serde(rename_all = "camelCase")]
    SetPresenceVisibility { visible: bool },
    /// The acting (verified) user changes their name.
    #[serde(rename_all = "camelCase")]
    ChangeName { name: UserName },
}

/// Which kind of chat a request names (a personal-chat event with a group id is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChatKind {
    Personal,
    Group,
}

impl Command {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::RegisterUser { .. } => "register_user",
            Command::RenameUser { .. } => "rename_user",
            Command::VerifyUser { .. } => "verify_user",
            Command::SendSelfMessage { .. } => "send_self_message",
            Command::CreatePersonalChat { .. } => "create_personal_chat",
            Command::CreateGroup { .. } => "create_group",
            Command::SendMessage { .. } => "send_message",
            Command::MarkRead { .. } => "mark_read",
            Command::MarkDelivered { .. } => "mark_delivered",
            Command::AddMember { .. } => "add_member",
            Command::KickMember { .. } => "kick_member",
            Command::ChangeAdmin { .. } => "change_admin",
            Command::LeaveGroup { .. } => "leave_group",
            Command::DeleteGroup { .. } => "delete_group",
            Command::EditMessage { .. } => "edit_message",
            Command::DeleteMessage { .. } => "delete_message",
            Command::React { .. } => "react",
            Command::SetPresenceVisibility { .. } => "set_presence_visibility",
            Command::ChangeName { .. } => "change_name",
        }
    }
}

/// Why a command was refused; mirrors the protocol's failure `code`s that a decision can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    BadRequest,
    NotFound,
    Forbidden,
    Conflict,
    Internal,
}

impl RefusalCode {
    /// The protocol's spelling (`bad_request`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::BadRequest => "bad_request",
            RefusalCode::NotFound => "not_found",
            RefusalCode::Forbidden => "forbidden",
            RefusalCode::Conflict => "conflict",
            RefusalCode::Internal => "internal",
        }
    }
}

/// What a command created, for the acknowledgement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// Global position of the command's last event (or of the earlier event that already did what
    /// was asked). Queries wait for the read models to reach it (read-your-writes).
    pub position: Position,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<ChatId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    /// Time of the created message, when one was created (or found again by its `ClientId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The answer to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum CommandOutcome {
    Accepted(Accepted),
    Refused { code: RefusalCode, message: String },
}

impl CommandOutcome {
    pub fn refused(code: RefusalCode, message: impl Into<String>) -> Self {
        CommandOutcome::Refused {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_as_json() {
        let cmd = CommandEnvelope {
            correlation_id: Uuid::nil(),
            actor: Some(UserId::parse("u1").unwrap()),
            command: Command::SendSelfMessage {
                content: Content::parse("hello").unwrap(),
                client_id: None,
                attachments: Vec::new(),
            },
            trace_parent: None,
        };
        let json = serde_json::to_string(&cmd).unwrap();
        assert!(json.contains(r#""type":"sendSelfMessage""#));
        assert_eq!(serde_json::from_str::<CommandEnvelope>(&json).unwrap(), cmd);
    }

    #[test]
    fn outcomes_round_trip_as_json() {
        let refused = CommandOutcome::refused(RefusalCode::Forbidden, "not a member");
        let json = serde_json::to_string(&refused).unwrap();
        assert_eq!(
            json,
            r#"{"outcome":"refused","code":"forbidden","message":"not a member"}"#
        );
        assert_eq!(
            serde_json::from_str::<CommandOutcome>(&json).unwrap(),
            refused
        );
    }
}
