//! From a command as the gateway sends it to what deciding it takes: which users must exist and be
//! verified, and which aggregate command to decide on which stream. Refusals that need no stream
//! (no signed-in user, a personal chat with oneself) are made here, before anything is read.

use std::time::Duration;

use events_schema::events::AttachmentShared;
use events_schema::{
    streams, ChatId, ChatKind, ClientId, Command, CommandEnvelope, Content, Description, Emoji,
    EventMetadata, GroupName, MessageId, RefusalCode, UserId, UserName,
};

use crate::domain::chat::ChatCommand;
use crate::domain::self_chat::SelfChatCommand;
use crate::domain::user::UserCommand;
use crate::domain::Refusal;

/// What deciding a command takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Users who must exist and be verified, checked in this order before anything is decided.
    pub verified: Vec<UserId>,
    /// Decided in order; a refusal stops the rest, and the last decision answers the command.
    pub steps: Vec<Step>,
}

/// One decision on one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decide<C> {
    pub stream: String,
    pub command: C,
    /// Whether it joins the stream's queue and may share an append with the commands queued
    /// with it (messages, which come in floods), rather than being decided alone.
    pub batched: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    User(Decide<UserCommand>),
    SelfChat(Decide<SelfChatCommand>),
    Chat(Decide<ChatCommand>),
}

impl Plan {
    fn one(step: Step) -> Self {
        Self {
            verified: Vec::new(),
            steps: vec![step],
        }
    }

    fn after_checking(mut self, verified: Vec<UserId>) -> Self {
        self.verified = verified;
        self
    }
}

/// The metadata every event of the command carries.
pub(crate) fn metadata(envelope: &CommandEnvelope) -> EventMetadata {
    EventMetadata {
        actor: envelope.actor.as_ref().map(|a| a.as_str().to_owned()),
        correlation_id: envelope.correlation_id,
        causation_id: None,
        // The span deciding it, when traced: the events' handlers continue from there.
        trace_parent: infra::telemetry::traces::current_trace_parent(),
    }
}

/// The settings the chat's rules read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How long after sending a message its sender may edit it (`EDIT_WINDOW`).
    pub edit_window: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            edit_window: infra::config::DEFAULT_EDIT_WINDOW,
        }
    }
}

/// What deciding `envelope` takes, or its refusal. An edit is decided against the time it is
/// routed (the decision itself reads no clock).
pub(crate) fn route(envelope: &CommandEnvelope, rules: &Rules) -> Result<Plan, Refusal> {
    let by = envelope.actor.as_ref();
    match &envelope.command {
        Command::RegisterUser { user_id, name } => Ok(register(user_id, name)),
        Command::RenameUser { user_id, name } => Ok(rename(user_id, name)),
        Command::VerifyUser { user_id } => Ok(verify(user_id)),
        Command::SendSelfMessage {
            content,
            client_id,
            attachments,
        } => self_message(by, content, client_id, attachments),
        Command::CreatePersonalChat { partner } => personal_chat(signed_in(by)?, partner),
        Command::CreateGroup {
            group_id,
            name,
            description,
            participants,
        } => Ok(new_group(
            signed_in(by)?,
            group_id,
            name,
            description,
            participants,
        )),
        Command::SendMessage {
            chat_id,
            kind,
            content,
            client_id,
            reply_to,
            attachments,
        } => Ok(message(
            signed_in(by)?,
            chat_id,
            *kind,
            content,
            client_id,
            reply_to,
            attachments,
        )),
        Command::EditMessage {
            chat_id,
            message_id,
            content,
        } => Ok(edit(signed_in(by)?, chat_id, message_id, content, rules)),
        Command::DeleteMessage {
            chat_id,
            message_id,
        } => Ok(delete_message(signed_in(by)?, chat_id, message_id)),
        Command::React {
            chat_id,
            message_id,
            emoji,
            on,
        } => Ok(react(signed_in(by)?, chat_id, message_id, emoji, *on)),
        Command::MarkRead {
            chat_id,
            kind,
            up_to,
        } => Ok(mark_read(signed_in(by)?, chat_id, *kind, up_to)),
        Command::MarkDelivered { chat_id, up_to } => {
            let reader = signed_in(by)?.clone();
            let up_to = up_to.clone();
            Ok(Plan::one(flood(
                chat_id,
                ChatCommand::MarkDelivered { reader, up_to },
            )))
        }
        Command::AddMember { chat_id, member } => Ok(add_member(signed_in(by)?, chat_id, member)),
        Command::KickMember { chat_id, member } => Ok(kick(signed_in(by)?, chat_id, member)),
        Command::ChangeAdmin { chat_id, member } => {
            Ok(change_admin(signed_in(by)?, chat_id, member))
        }
        Command::LeaveGroup { chat_id } => Ok(leave(signed_in(by)?, chat_id)),
        Command::DeleteGroup { chat_id } => Ok(delete(signed_in(by)?, chat_id)),
        Command::SetPresenceVisibility { visible } => {
            let user_id = signed_in(by)?;
            let command = UserCommand::SetPresenceVisibility {
                user_id: user_id.clone(),
                visible: *visible,
            };
            Ok(Plan::one(user(user_id, command)))
        }
        Command::ChangeName { name } => {
            let user_id = signed_in(by)?;
            let command = UserCommand::ChangeName {
                user_id: user_id.clone(),
                name: name.clone(),
            };
            Ok(Plan::one(user(user_id, command)))
        }
    }
}

/// The acting user of a command that needs one.
fn signed_in(actor: Option<&UserId>) -> Result<&UserId, Refusal> {
    actor.ok_or_else(|| Refusal::new(RefusalCode::Forbidden, "this needs a signed-in user"))
}

fn user(user_id: &UserId, command: UserCommand) -> Step {
    Step::User(Decide {
        stream: streams::user(user_id),
        command,
        batched: false,
    })
}

fn chat(chat_id: &ChatId, command: ChatCommand) -> Step {
    Step::Chat(Decide {
        stream: streams::chat(chat_id),
        command,
        batched: false,
    })
}

/// A chat command that comes in floods (one per message received: delivered and read pointers),
/// so it shares the stream's batch with the sends queued beside it.
fn flood(chat_id: &ChatId, command: ChatCommand) -> Step {
    Step::Chat(Decide {
        stream: streams::chat(chat_id),
        command,
        batched: true,
    })
}

fn register(user_id: &UserId, name: &UserName) -> Plan {
    let command = UserCommand::Register {
        user_id: user_id.clone(),
        name: name.clone(),
    };
    Plan::one(user(user_id, command))
}

fn rename(user_id: &UserId, name: &UserName) -> Plan {
    let command = UserCommand::Rename {
        user_id: user_id.clone(),
        name: name.clone(),
    };
    Plan::one(user(user_id, command))
}

/// Verification touches two streams, each step idempotent, so a retry after a crash between them
/// completes the work.
fn verify(user_id: &UserId) -> Plan {
    let verified = UserCommand::Verify {
        user_id: user_id.clone(),
    };
    let self_chat = Step::SelfChat(Decide {
        stream: streams::chat(&ChatId::self_chat_of(user_id)),
        command: SelfChatCommand::Create {
            owner: user_id.clone(),
        },
        batched: false,
    });
    Plan {
        verified: Vec::new(),
        steps: vec![user(user_id, verified), self_chat],
    }
}

fn self_message(
    by: Option<&UserId>,
    content: &Content,
    client_id: &Option<ClientId>,
    attachments: &[AttachmentShared],
) -> Result<Plan, Refusal> {
    let sender =
        by.ok_or_else(|| Refusal::new(RefusalCode::Forbidden, "sending needs a signed-in user"))?;
    Ok(Plan::one(Step::SelfChat(Decide {
        stream: streams::chat(&ChatId::self_chat_of(sender)),
        command: SelfChatCommand::Send {
            sender: sender.clone(),
            content: content.clone(),
            client_id: client_id.clone(),
            message_id: MessageId::generate(),
            attachments: attachments.to_vec(),
        },
        batched: true,
    })))
}

/// Both users must be verified; the chat's id is the pair's.
fn personal_chat(creator: &UserId, partner: &UserId) -> Result<Plan, Refusal> {
    if creator == partner {
        return Err(Refusal::new(
            RefusalCode::BadRequest,
            "a personal chat needs another user",
        ));
    }
    let chat_id = ChatId::personal_between(creator, partner);
    let create = ChatCommand::CreatePersonal {
        chat_id: chat_id.clone(),
        creator: creator.clone(),
        partner: partner.clone(),
    };
    Ok(Plan::one(chat(&chat_id, create)).after_checking(vec![creator.clone(), partner.clone()]))
}

/// Who may be named is the group's rule (the aggregate's); that they exist is the users' streams'
/// fact, checked for every participant but the admin.
fn new_group(
    admin: &UserId,
    group_id: &ChatId,
    name: &GroupName,
    description: &Description,
    participants: &[UserId],
) -> Plan {
    let others = participants.iter().filter(|p| *p != admin).cloned();
    let create = ChatCommand::CreateGroup {
        chat_id: group_id.clone(),
        admin: admin.clone(),
        name: name.clone(),
        description: description.clone(),
        participants: participants.to_vec(),
    };
    Plan::one(chat(group_id, create)).after_checking(others.collect())
}

fn message(
    sender: &UserId,
    chat_id: &ChatId,
    kind: ChatKind,
    content: &Content,
    client_id: &Option<ClientId>,
    reply_to: &Option<MessageId>,
    attachments: &[AttachmentShared],
) -> Plan {
    let send = ChatCommand::Send {
        kind,
        sender: sender.clone(),
        content: content.clone(),
        client_id: client_id.clone(),
        message_id: MessageId::generate(),
        reply_to: reply_to.clone(),
        attachments: attachments.to_vec(),
    };
    Plan::one(Step::Chat(Decide {
        stream: streams::chat(chat_id),
        command: send,
        batched: true,
    }))
}

fn mark_read(reader: &UserId, chat_id: &ChatId, kind: ChatKind, up_to: &Option<MessageId>) -> Plan {
    let (reader, up_to) = (reader.clone(), up_to.clone());
    Plan::one(flood(
        chat_id,
        ChatCommand::MarkRead {
            kind,
            reader,
            up_to,
        },
    ))
}

/// The member added must be a verified user.
fn add_member(admin: &UserId, chat_id: &ChatId, member: &UserId) -> Plan {
    let add = ChatCommand::AddMember {
        admin: admin.clone(),
        member: member.clone(),
    };
    Plan::one(chat(chat_id, add)).after_checking(vec![member.clone()])
}

fn kick(admin: &UserId, chat_id: &ChatId, member: &UserId) -> Plan {
    let (admin, member) = (admin.clone(), member.clone());
    Plan::one(chat(chat_id, ChatCommand::Kick { admin, member }))
}

fn change_admin(admin: &UserId, chat_id: &ChatId, member: &UserId) -> Plan {
    let (admin, member) = (admin.clone(), member.clone());
    Plan::one(chat(chat_id, ChatCommand::ChangeAdmin { admin, member }))
}

fn leave(member: &UserId, chat_id: &ChatId) -> Plan {
    let member = member.clone();
    Plan::one(chat(chat_id, ChatCommand::Leave { member }))
}

fn delete(admin: &UserId, chat_id: &ChatId) -> Plan {
    let admin = admin.clone();
    Plan::one(chat(chat_id, ChatCommand::Delete { admin }))
}

/// A change to a message goes to the self chat's aggregate when the chat is the actor's own
/// (its id is theirs), else to the chat's. Another user naming someone's self chat reaches the
/// chat aggregate, which knows no such chat.
fn message_change(
    actor: &UserId,
    chat_id: &ChatId,
    own: SelfChatCommand,
    other: ChatCommand,
) -> Plan {
    if *chat_id == ChatId::self_chat_of(actor) {
        return Plan::one(Step::SelfChat(Decide {
            stream: streams::chat(chat_id),
            command: own,
            batched: false,
        }));
    }
    Plan::one(chat(chat_id, other))
}

fn edit(
    editor: &UserId,
    chat_id: &ChatId,
    message_id: &MessageId,
    content: &Content,
    rules: &Rules,
) -> Plan {
    let now = chrono::Utc::now();
    let (editor, message_id, content) = (editor.clone(), message_id.clone(), content.clone());
    let window = rules.edit_window;
    message_change(
        &editor,
        chat_id,
        SelfChatCommand::Edit {
            editor: editor.clone(),
            message_id: message_id.clone(),
            content: content.clone(),
            now,
            window,
        },
        ChatCommand::Edit {
            editor: editor.clone(),
            message_id,
            content,
            now,
            window,
        },
    )
}

fn delete_message(by: &UserId, chat_id: &ChatId, message_id: &MessageId) -> Plan {
    let (by, message_id) = (by.clone(), message_id.clone());
    message_change(
        &by,
        chat_id,
        SelfChatCommand::DeleteMessage {
            by: by.clone(),
            message_id: message_id.clone(),
        },
        ChatCommand::DeleteMessage {
            by: by.clone(),
            message_id,
        },
    )
}

fn react(user: &UserId, chat_id: &ChatId, message_id: &MessageId, emoji: &Emoji, on: bool) -> Plan {
    let (user, message_id, emoji) = (user.clone(), message_id.clone(), emoji.clone());
    message_change(
        &user,
        chat_id,
        SelfChatCommand::React {
            user: user.clone(),
            message_id: message_id.clone(),
            emoji: emoji.clone(),
            on,
        },
        ChatCommand::React {
            user: user.clone(),
            message_id,
            emoji,
            on,
        },
    )
}

#[cfg(test)]
mod tests;
