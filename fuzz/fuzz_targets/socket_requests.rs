//! Socket.IO event payloads: any JSON a client can send, through every parser of
//! gateway/src/socket/requests.rs. None may panic; each refusal is a `bad_request`; what is accepted
//! holds only valid values, and the parsers that combine others agree with them.

#![no_main]

use events_schema::{ChatId, ClientId, Content, Description, GroupName, MessageId, UserId};
use gateway::socket::requests::{self, PageRequest, SearchPurpose, MAX_PARTICIPANTS};
use gateway::socket::Failure;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = serde_json::from_slice::<Value>(data) {
        check(&payload);
    }
});

/// A refusal of a malformed payload is always the client's fault.
fn refused<T>(result: &Result<T, Failure>) {
    if let Err(failure) = result {
        assert_eq!(failure.code, "bad_request", "{failure:?}");
        assert!(failure.also.is_none());
    }
}

fn field<'a>(payload: &'a Value, name: &str) -> Option<&'a Value> {
    payload.as_object().and_then(|map| map.get(name))
}

fn check(payload: &Value) {
    let is_object = payload.is_object();
    // Events whose fields are all optional also take null or [] for "no fields".
    let no_fields = payload.is_null() || payload.as_array().is_some_and(|a| a.is_empty());

    let nothing = requests::nothing(payload);
    refused(&nothing);
    assert_eq!(nothing.is_ok(), is_object || no_fields);

    let page = requests::page(payload);
    refused(&page);
    if let Ok(page) = &page {
        assert!((1..=PageRequest::MAX_LIMIT).contains(&page.limit));
        if let Some(before) = &page.before {
            assert_eq!(MessageId::parse(before.as_str()).as_ref(), Ok(before));
        }
    }

    let search = requests::search(payload);
    refused(&search);
    if let Ok(search) = &search {
        assert!(search.name.chars().count() <= 64);
        // PostgreSQL refuses a NUL in a query; no stored name holds any control character.
        assert!(!search.name.chars().any(char::is_control));
        assert_eq!(
            field(payload, "Name").and_then(Value::as_str),
            Some(search.name.as_str())
        );
        let kind = field(payload, "Type").and_then(Value::as_str);
        match search.purpose {
            SearchPurpose::Search => assert_eq!(kind, Some("Search")),
            SearchPurpose::Add => assert_eq!(kind, Some("Add")),
        }
        assert!(search.purpose.limit() >= 1);
    }

    let send = requests::send_self(payload);
    refused(&send);
    if let Ok(send) = &send {
        assert_eq!(
            Content::parse(send.content.as_str()).as_ref(),
            Ok(&send.content)
        );
        assert_eq!(
            field(payload, "Content").and_then(Value::as_str),
            Some(send.content.as_str())
        );
        if let Some(client_id) = &send.client_id {
            assert_eq!(ClientId::parse(client_id.as_str()).as_ref(), Ok(client_id));
        }
    }

    let receiver = requests::receiver(payload);
    refused(&receiver);
    if let Ok(user) = &receiver {
        assert_eq!(UserId::parse(user.as_str()).as_ref(), Ok(user));
    }

    for name in ["ChatId", "GroupId"] {
        let chat = requests::chat(payload, name);
        refused(&chat);
        if let Ok(chat) = &chat {
            assert_eq!(ChatId::parse(chat.as_str()).as_ref(), Ok(chat));
            assert_eq!(
                field(payload, name).and_then(Value::as_str),
                Some(chat.as_str())
            );
        }

        // The combined requests accept exactly an object both parts accept, with the same values.
        let chat_page = requests::chat_page(payload, name);
        refused(&chat_page);
        match (&chat_page, is_object) {
            (Ok((c, p)), _) => {
                assert_eq!(chat.as_ref().ok(), Some(c));
                assert_eq!(page.as_ref().ok(), Some(p));
            }
            (Err(_), true) => assert!(chat.is_err() || page.is_err()),
            (Err(_), false) => {}
        }

        let send_to = requests::send_to(payload, name);
        refused(&send_to);
        match (&send_to, is_object) {
            (Ok(to), _) => {
                assert_eq!(chat.as_ref().ok(), Some(&to.chat_id));
                let own = send.as_ref().ok();
                assert_eq!(own.map(|s| &s.content), Some(&to.content));
                assert_eq!(own.map(|s| &s.client_id), Some(&to.client_id));
                if let Some(reply_to) = &to.reply_to {
                    assert_eq!(
                        field(payload, "ReplyTo").and_then(Value::as_str),
                        Some(reply_to.as_str())
                    );
                }
            }
            (Err(_), true) => assert!(chat.is_err() || send.is_err()),
            (Err(_), false) => {}
        }
    }

    let member = requests::group_member(payload);
    refused(&member);
    if let Ok((group, user)) = &member {
        assert_eq!(ChatId::parse(group.as_str()).as_ref(), Ok(group));
        assert_eq!(UserId::parse(user.as_str()).as_ref(), Ok(user));
    }

    let group = requests::create_group(payload);
    refused(&group);
    if let Ok(group) = &group {
        assert!(group.participants.len() <= MAX_PARTICIPANTS);
        assert_eq!(
            GroupName::parse(group.name.as_str()).as_ref(),
            Ok(&group.name)
        );
        assert_eq!(
            Description::parse(group.description.as_str()).as_ref(),
            Ok(&group.description)
        );
        for user in &group.participants {
            assert_eq!(UserId::parse(user.as_str()).as_ref(), Ok(user));
        }
    }
}
