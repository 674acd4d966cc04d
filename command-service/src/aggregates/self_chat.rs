//! The self chat (stream `chat-<userId>`): notes to self. Its state never holds the messages, only
//! what decisions need: who owns it, and the recent `ClientId`s for idempotent sends.

use events_schema::events::{MessageFormat, MessageSent, SelfChatCreated};
use events_schema::{
    Accepted, ChatId, ClientId, Content, DomainEvent, MessageId, Position, RecordedEvent,
    RefusalCode, UserId,
};

use super::recent::RecentSends;
use super::{Aggregate, Decision, Refusal};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelfChat {
    pub owner: Option<UserId>,
    pub created_at: Option<Position>,
    pub client_ids: RecentSends,
}

impl Aggregate for SelfChat {
    fn apply(&mut self, event: &DomainEvent, recorded: &RecordedEvent) {
        match event {
            DomainEvent::SelfChatCreated(e) => {
                self.owner = Some(e.owner.clone());
                self.created_at = Some(recorded.position);
            }
            DomainEvent::MessageSent(e) => self.client_ids.remember_sent(e, recorded),
            _ => {}
        }
    }
}

impl SelfChat {
    pub fn create(&self, owner: &UserId) -> Result<Decision, Refusal> {
        match (&self.owner, self.created_at) {
            (Some(_), Some(position)) => Ok(Decision::AlreadyDone(Accepted {
                position,
                chat_id: Some(ChatId::self_chat_of(owner)),
                ..Accepted::default()
            })),
            _ => Ok(Decision::Append(vec![SelfChatCreated {
                chat_id: ChatId::self_chat_of(owner),
                owner: owner.clone(),
            }
            .into()])),
        }
    }

    /// A note from `sender`; `message_id` is the id to use if a new message is written.
    pub fn send(
        &self,
        sender: &UserId,
        content: &Content,
        client_id: Option<&ClientId>,
        message_id: MessageId,
    ) -> Result<Decision, Refusal> {
        let Some(owner) = &self.owner else {
            return Err(Refusal::new(
                RefusalCode::NotFound,
                "no self chat for this user",
            ));
        };
        if owner != sender {
            return Err(Refusal::new(
                RefusalCode::Forbidden,
                "only its owner writes to a self chat",
            ));
        }
        if let Some(earlier) = client_id.and_then(|c| self.client_ids.get(c)) {
            return Ok(Decision::AlreadyDone(Accepted {
                position: earlier.position,
                chat_id: Some(ChatId::self_chat_of(owner)),
                message_id: Some(earlier.message_id.clone()),
                occurred_at: Some(earlier.occurred_at),
            }));
        }
        Ok(Decision::Append(vec![MessageSent {
            chat_id: ChatId::self_chat_of(owner),
            message_id,
            sender_id: sender.clone(),
            content: content.clone(),
            format: MessageFormat::Text,
            client_id: client_id.cloned(),
        }
        .into()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::recent::CLIENT_ID_WINDOW;
    use crate::aggregates::testing::given;

    fn ids() -> (UserId, MessageId) {
        (
            UserId::parse("u1").unwrap(),
            MessageId::parse("m1").unwrap(),
        )
    }

    fn created(owner: &UserId) -> DomainEvent {
        SelfChatCreated {
            chat_id: ChatId::self_chat_of(owner),
            owner: owner.clone(),
        }
        .into()
    }

    #[test]
    fn only_the_owner_writes_and_only_once_created() {
        let (me, m) = ids();
        let hi = Content::parse("hi").unwrap();
        assert_eq!(
            given::<SelfChat>(&[])
                .send(&me, &hi, None, m.clone())
                .unwrap_err()
                .code,
            RefusalCode::NotFound
        );
        let chat: SelfChat = given(&[created(&me)]);
        let other = UserId::parse("u2").unwrap();
        assert_eq!(
            chat.send(&other, &hi, None, m.clone()).unwrap_err().code,
            RefusalCode::Forbidden
        );
        let sent = MessageSent {
            chat_id: ChatId::self_chat_of(&me),
            message_id: m.clone(),
            sender_id: me.clone(),
            content: hi.clone(),
            format: MessageFormat::Text,
            client_id: None,
        };
        assert_eq!(
            chat.send(&me, &hi, None, m),
            Ok(Decision::Append(vec![sent.into()]))
        );
    }

    #[test]
    fn a_repeated_client_id_answers_the_first_message() {
        let (me, m) = ids();
        let hi = Content::parse("hi").unwrap();
        let key = ClientId::parse("k1").unwrap();
        let first = MessageSent {
            chat_id: ChatId::self_chat_of(&me),
            message_id: m.clone(),
            sender_id: me.clone(),
            content: hi.clone(),
            format: MessageFormat::Text,
            client_id: Some(key.clone()),
        };
        let chat: SelfChat = given(&[created(&me), first.into()]);
        match chat.send(&me, &hi, Some(&key), MessageId::parse("m2").unwrap()) {
            Ok(Decision::AlreadyDone(accepted)) => {
                assert_eq!((accepted.message_id, accepted.position), (Some(m), 2));
            }
            other => panic!("expected the first message, got {other:?}"),
        }
    }

    #[test]
    fn the_client_id_window_is_bounded() {
        let (me, _) = ids();
        let mut events = vec![created(&me)];
        for i in 0..(CLIENT_ID_WINDOW + 10) {
            events.push(
                MessageSent {
                    chat_id: ChatId::self_chat_of(&me),
                    message_id: MessageId::parse(&format!("m{i}")).unwrap(),
                    sender_id: me.clone(),
                    content: Content::parse("x").unwrap(),
                    format: MessageFormat::Text,
                    client_id: Some(ClientId::parse(&format!("k{i}")).unwrap()),
                }
                .into(),
            );
        }
        let chat: SelfChat = given(&events);
        assert_eq!(chat.client_ids.len(), CLIENT_ID_WINDOW);
        assert!(!chat
            .client_ids
            .contains_key(&ClientId::parse("k0").unwrap()));
        assert!(chat
            .client_ids
            .contains_key(&ClientId::parse(&format!("k{}", CLIENT_ID_WINDOW + 9)).unwrap()));
    }

    #[test]
    fn creating_twice_writes_once() {
        let (me, _) = ids();
        assert!(matches!(
            given::<SelfChat>(&[]).create(&me),
            Ok(Decision::Append(_))
        ));
        assert!(matches!(
            given::<SelfChat>(&[created(&me)]).create(&me),
            Ok(Decision::AlreadyDone(_))
        ));
    }
}
