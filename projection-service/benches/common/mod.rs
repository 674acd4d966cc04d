//! What the projection benches share: a log shaped like a chat server's.

use std::sync::Arc;

use events_schema::events::{
    GroupCreated, MessageFormat, MessageSent, UserRegistered, UserVerified,
};
use events_schema::{
    streams, ChatId, Content, DomainEvent, EventMetadata, MessageId, UserId, UserName,
};
use infra::{EventStore, ExpectedVersion};
use uuid::Uuid;

fn new_event(event: impl Into<DomainEvent>) -> events_schema::NewEvent {
    let event: DomainEvent = event.into();
    event.into_new_event(EventMetadata {
        actor: None,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        trace_parent: None,
    })
}

/// `events` events: 200 users, 100 groups of 20, the rest messages appended 500 at a time.
pub async fn fill(store: &Arc<dyn EventStore>, events: usize) {
    let users: Vec<UserId> = (0..200).map(|_| UserId::generate()).collect();
    for (i, user) in users.iter().enumerate() {
        let name = UserName::parse(&format!("User {i}")).expect("name");
        let batch = vec![
            new_event(UserRegistered {
                user_id: user.clone(),
                name,
            }),
            new_event(UserVerified {
                user_id: user.clone(),
            }),
        ];
        store
            .append(&streams::user(user), ExpectedVersion::Any, batch)
            .await
            .expect("append");
    }
    let groups: Vec<ChatId> = (0..100).map(|_| ChatId::generate()).collect();
    for (i, group) in groups.iter().enumerate() {
        let members: Vec<UserId> = (0..20)
            .map(|j| users[(i * 7 + j) % users.len()].clone())
            .collect();
        let created = new_event(GroupCreated {
            chat_id: group.clone(),
            name: format!("group {i}"),
            description: String::new(),
            admin: members[0].clone(),
            members,
        });
        store
            .append(&streams::chat(group), ExpectedVersion::Any, vec![created])
            .await
            .expect("append");
    }
    let mut written = 500;
    let mut round = 0;
    while written < events {
        let group = &groups[round % groups.len()];
        let batch: Vec<_> = (0..500.min(events - written))
            .map(|k| {
                new_event(MessageSent {
                    chat_id: group.clone(),
                    message_id: MessageId::generate(),
                    sender_id: users[(round * 7 + k % 20) % users.len()].clone(),
                    content: Content::parse(&format!(
                        "message {round}-{k}: some words of an ordinary length"
                    ))
                    .expect("content"),
                    format: MessageFormat::Text,
                    client_id: None,
                    reply_to: None,
                    attachments: Vec::new(),
                })
            })
            .collect();
        written += batch.len();
        store
            .append(&streams::chat(group), ExpectedVersion::Any, batch)
            .await
            .expect("append");
        round += 1;
    }
}
