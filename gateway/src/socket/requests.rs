//! Socket payloads parsed into typed requests, in one place. Past this module nothing is a raw
//! `serde_json::Value` that still needs checking.

use events_schema::{ChatId, ClientId, Content, Description, Emoji, GroupName, MessageId, UserId};
use projection_service::read_models::search::{SearchCursor, SearchTerms};
use serde_json::{Map, Value};

use super::reply::Failure;

/// The payload as an object. Events whose fields are all optional also accept no payload.
fn object(payload: &Value, all_optional: bool) -> Result<Map<String, Value>, Failure> {
    match payload {
        Value::Object(map) => Ok(map.clone()),
        Value::Null if all_optional => Ok(Map::new()),
        Value::Array(items) if all_optional && items.is_empty() => Ok(Map::new()),
        _ => Err(Failure::bad_request("the payload must be an object")),
    }
}

fn required_str<'a>(map: &'a Map<String, Value>, field: &str) -> Result<&'a str, Failure> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Failure::bad_request(format!("{field} must be a string"))),
        None => Err(Failure::bad_request(format!("{field} is required"))),
    }
}

fn optional_str<'a>(map: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Failure> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Failure::bad_request(format!("{field} must be a string"))),
    }
}

/// A request with no fields (`fetch-user-details {}`).
pub fn nothing(payload: &Value) -> Result<(), Failure> {
    object(payload, true).map(|_| ())
}

/// `{Before?, Limit?}` of every `fetch-…` event.
#[derive(Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub before: Option<MessageId>,
    pub limit: u32,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 200;
}

pub fn page(payload: &Value) -> Result<PageRequest, Failure> {
    let map = object(payload, true)?;
    page_fields(&map)
}

fn page_fields(map: &Map<String, Value>) -> Result<PageRequest, Failure> {
    let before = optional_str(map, "Before")?
        .map(|raw| {
            MessageId::parse(raw).map_err(|_| Failure::bad_request("Before is not a message id"))
        })
        .transpose()?;
    let limit = match map.get("Limit") {
        None | Some(Value::Null) => PageRequest::DEFAULT_LIMIT,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if n >= 1 => n.min(u64::from(PageRequest::MAX_LIMIT)) as u32,
            _ => {
                return Err(Failure::bad_request(
                    "Limit must be a whole number of at least 1",
                ))
            }
        },
        Some(_) => return Err(Failure::bad_request("Limit must be a number")),
    };
    Ok(PageRequest { before, limit })
}

/// `search-user {Name, Type}`.
#[derive(Debug, PartialEq, Eq)]
pub struct SearchRequest {
    pub name: String,
    pub purpose: SearchPurpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPurpose {
    /// `Type: "Search"`: → `searched-user`, at most 8.
    Search,
    /// `Type: "Add"`: → `added-user-match`, at most 3.
    Add,
}

impl SearchPurpose {
    pub fn limit(self) -> u32 {
        match self {
            SearchPurpose::Search => 8,
            SearchPurpose::Add => 3,
        }
    }

    pub fn answer_event(self) -> &'static str {
        match self {
            SearchPurpose::Search => "searched-user",
            SearchPurpose::Add => "added-user-match",
        }
    }
}

pub fn search(payload: &Value) -> Result<SearchRequest, Failure> {
    let map = object(payload, false)?;
    let name = required_str(&map, "Name")?;
    if name.chars().count() > 64 {
        return Err(Failure::bad_request("Name is longer than 64 characters"));
    }
    // No stored name holds one, and PostgreSQL refuses a NUL in a query.
    if name.chars().any(char::is_control) {
        return Err(Failure::bad_request(
            "Name must not contain control characters",
        ));
    }
    let purpose = match required_str(&map, "Type")? {
        "Search" => SearchPurpose::Search,
        "Add" => SearchPurpose::Add,
        _ => return Err(Failure::bad_request("Type must be \"Search\" or \"Add\"")),
    };
    Ok(SearchRequest {
        name: name.to_owned(),
        purpose,
    })
}

/// `search-messages {Query, ChatId?, Before?, Limit?}`.
#[derive(Debug, PartialEq, Eq)]
pub struct SearchMessagesRequest {
    pub terms: SearchTerms,
    pub chat: Option<ChatId>,
    pub before: Option<SearchCursor>,
    pub limit: u32,
}

impl SearchMessagesRequest {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;
    /// Characters of `Query`.
    pub const MAX_QUERY: usize = 256;
}

pub fn search_messages(payload: &Value) -> Result<SearchMessagesRequest, Failure> {
    let map = object(payload, false)?;
    let query = required_str(&map, "Query")?;
    if query.chars().count() > SearchMessagesRequest::MAX_QUERY {
        return Err(Failure::bad_request(format!(
            "Query is longer than {} characters",
            SearchMessagesRequest::MAX_QUERY
        )));
    }
    if query
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(Failure::bad_request(
            "Query must not contain control characters",
        ));
    }
    let terms = SearchTerms::parse(query)
        .ok_or_else(|| Failure::bad_request("Query has no words to search for"))?;
    if terms.words().len() > SearchTerms::MAX_WORDS {
        return Err(Failure::bad_request(format!(
            "Query has more than {} words",
            SearchTerms::MAX_WORDS
        )));
    }
    let chat = optional_str(&map, "ChatId")?
        .map(|raw| ChatId::parse(raw).map_err(|_| Failure::bad_request("ChatId is not a chat id")))
        .transpose()?;
    let before = optional_str(&map, "Before")?
        .map(|raw| {
            raw.parse::<SearchCursor>()
                .map_err(|_| Failure::bad_request("Before is not a search cursor"))
        })
        .transpose()?;
    let limit = match map.get("Limit") {
        None | Some(Value::Null) => SearchMessagesRequest::DEFAULT_LIMIT,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if n >= 1 => n.min(u64::from(SearchMessagesRequest::MAX_LIMIT)) as u32,
            _ => {
                return Err(Failure::bad_request(
                    "Limit must be a whole number of at least 1",
                ))
            }
        },
        Some(_) => return Err(Failure::bad_request("Limit must be a number")),
    };
    Ok(SearchMessagesRequest {
        terms,
        chat,
        before,
        limit,
    })
}

/// `send-self-message {Content, ClientId?}`.
#[derive(Debug, PartialEq, Eq)]
pub struct SendSelfRequest {
    pub content: Content,
    pub client_id: Option<ClientId>,
}

pub fn send_self(payload: &Value) -> Result<SendSelfRequest, Failure> {
    send_fields(&object(payload, false)?)
}

fn send_fields(map: &Map<String, Value>) -> Result<SendSelfRequest, Failure> {
    let content = Content::parse(required_str(map, "Content")?)
        .map_err(|e| Failure::bad_request(format!("Content: {e}")))?;
    let client_id = optional_str(map, "ClientId")?
        .map(|raw| ClientId::parse(raw).map_err(|e| Failure::bad_request(e.to_string())))
        .transpose()?;
    Ok(SendSelfRequest { content, client_id })
}

fn required_chat(map: &Map<String, Value>, field: &str) -> Result<ChatId, Failure> {
    ChatId::parse(required_str(map, field)?)
        .map_err(|_| Failure::bad_request(format!("{field} is not a chat id")))
}

fn required_user(map: &Map<String, Value>, field: &str) -> Result<UserId, Failure> {
    UserId::parse(required_str(map, field)?)
        .map_err(|_| Failure::bad_request(format!("{field} is not a user id")))
}

/// `{Receiver}` of `check-chat` and `create-personal-chat` (whose `Partner` and `UserName` are
/// display names the original client sends; the stored names are used instead).
pub fn receiver(payload: &Value) -> Result<UserId, Failure> {
    required_user(&object(payload, false)?, "Receiver")
}

/// A request naming one chat: `{ChatId}` or `{GroupId}`.
pub fn chat(payload: &Value, field: &str) -> Result<ChatId, Failure> {
    required_chat(&object(payload, false)?, field)
}

/// `fetch-personal-chat {ChatId, Before?, Limit?}` and `fetch-group-chat {GroupId, …}`.
pub fn chat_page(payload: &Value, field: &str) -> Result<(ChatId, PageRequest), Failure> {
    let map = object(payload, false)?;
    Ok((required_chat(&map, field)?, page_fields(&map)?))
}

/// `send-personal-message {ChatId, Content, ClientId?, ReplyTo?}` and `send-group-message
/// {GroupId, …}`.
#[derive(Debug, PartialEq, Eq)]
pub struct SendRequest {
    pub chat_id: ChatId,
    pub content: Content,
    pub client_id: Option<ClientId>,
    pub reply_to: Option<MessageId>,
}

pub fn send_to(payload: &Value, field: &str) -> Result<SendRequest, Failure> {
    let map = object(payload, false)?;
    let chat_id = required_chat(&map, field)?;
    let SendSelfRequest { content, client_id } = send_fields(&map)?;
    let reply_to = optional_str(&map, "ReplyTo")?
        .map(|raw| {
            MessageId::parse(raw).map_err(|_| Failure::bad_request("ReplyTo is not a message id"))
        })
        .transpose()?;
    Ok(SendRequest {
        chat_id,
        content,
        client_id,
        reply_to,
    })
}

fn required_message(map: &Map<String, Value>) -> Result<MessageId, Failure> {
    MessageId::parse(required_str(map, "MessageId")?)
        .map_err(|_| Failure::bad_request("MessageId is not a message id"))
}

/// `read-personal-message {ChatId, UpTo?}` and `read-group-message {GroupId, UpTo?}`.
pub fn read(payload: &Value, field: &str) -> Result<(ChatId, Option<MessageId>), Failure> {
    let map = object(payload, false)?;
    let up_to = optional_str(&map, "UpTo")?
        .map(|raw| {
            MessageId::parse(raw).map_err(|_| Failure::bad_request("UpTo is not a message id"))
        })
        .transpose()?;
    Ok((required_chat(&map, field)?, up_to))
}

/// `mark-delivered {ChatId, UpTo}`.
pub fn mark_delivered(payload: &Value) -> Result<(ChatId, MessageId), Failure> {
    let map = object(payload, false)?;
    let up_to = MessageId::parse(required_str(&map, "UpTo")?)
        .map_err(|_| Failure::bad_request("UpTo is not a message id"))?;
    Ok((required_chat(&map, "ChatId")?, up_to))
}

/// `delete-message {ChatId, MessageId}`.
pub fn message(payload: &Value) -> Result<(ChatId, MessageId), Failure> {
    let map = object(payload, false)?;
    Ok((required_chat(&map, "ChatId")?, required_message(&map)?))
}

/// `edit-message {ChatId, MessageId, Content}`.
#[derive(Debug, PartialEq, Eq)]
pub struct EditRequest {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub content: Content,
}

pub fn edit_message(payload: &Value) -> Result<EditRequest, Failure> {
    let map = object(payload, false)?;
    Ok(EditRequest {
        chat_id: required_chat(&map, "ChatId")?,
        message_id: required_message(&map)?,
        content: Content::parse(required_str(&map, "Content")?)
            .map_err(|e| Failure::bad_request(format!("Content: {e}")))?,
    })
}

/// `react {ChatId, MessageId, Emoji, On}`.
#[derive(Debug, PartialEq, Eq)]
pub struct ReactRequest {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub emoji: Emoji,
    pub on: bool,
}

pub fn react(payload: &Value) -> Result<ReactRequest, Failure> {
    let map = object(payload, false)?;
    let emoji = Emoji::parse(required_str(&map, "Emoji")?)
        .map_err(|e| Failure::bad_request(e.to_string()))?;
    let on = match map.get("On") {
        Some(Value::Bool(on)) => *on,
        Some(_) => return Err(Failure::bad_request("On must be true or false")),
        None => return Err(Failure::bad_request("On is required")),
    };
    Ok(ReactRequest {
        chat_id: required_chat(&map, "ChatId")?,
        message_id: required_message(&map)?,
        emoji,
        on,
    })
}

/// `add-member`, `kickout`, `change-admin`: `{GroupId, Member}`.
pub fn group_member(payload: &Value) -> Result<(ChatId, UserId), Failure> {
    let map = object(payload, false)?;
    Ok((
        required_chat(&map, "GroupId")?,
        required_user(&map, "Member")?,
    ))
}

/// The most participants one `create-group-chat` may name.
pub const MAX_PARTICIPANTS: usize = 256;

/// `create-group-chat {Name, Description, Participants}`.
#[derive(Debug, PartialEq, Eq)]
pub struct CreateGroupRequest {
    pub name: GroupName,
    pub description: Description,
    pub participants: Vec<UserId>,
}

pub fn create_group(payload: &Value) -> Result<CreateGroupRequest, Failure> {
    let map = object(payload, false)?;
    let name = GroupName::parse(required_str(&map, "Name")?)
        .map_err(|e| Failure::bad_request(e.to_string()))?;
    let description = Description::parse(optional_str(&map, "Description")?.unwrap_or_default())
        .map_err(|e| Failure::bad_request(e.to_string()))?;
    let participants = match map.get("Participants") {
        Some(Value::Array(items)) if items.len() <= MAX_PARTICIPANTS => items
            .iter()
            .map(|item| match item {
                Value::String(raw) => UserId::parse(raw)
                    .map_err(|_| Failure::bad_request("Participants holds a malformed id")),
                _ => Err(Failure::bad_request("Participants must be user ids")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) => {
            return Err(Failure::bad_request(format!(
                "at most {MAX_PARTICIPANTS} participants"
            )))
        }
        Some(_) => {
            return Err(Failure::bad_request(
                "Participants must be an array of user ids",
            ))
        }
        None => return Err(Failure::bad_request("Participants is required")),
    };
    Ok(CreateGroupRequest {
        name,
        description,
        participants,
    })
}

fn required_bool(map: &Map<String, Value>, field: &str) -> Result<bool, Failure> {
    match map.get(field) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Failure::bad_request(format!(
            "{field} must be true or false"
        ))),
        None => Err(Failure::bad_request(format!("{field} is required"))),
    }
}

/// `typing {ChatId, Typing}`.
pub fn typing(payload: &Value) -> Result<(ChatId, bool), Failure> {
    let map = object(payload, false)?;
    Ok((
        required_chat(&map, "ChatId")?,
        required_bool(&map, "Typing")?,
    ))
}

/// `set-presence {Visible}`.
pub fn set_presence(payload: &Value) -> Result<bool, Failure> {
    required_bool(&object(payload, false)?, "Visible")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_default_cap_and_refuse() {
        assert_eq!(
            page(&Value::Null).unwrap(),
            PageRequest {
                before: None,
                limit: 50
            }
        );
        assert_eq!(page(&json!({"Limit": 1000})).unwrap().limit, 200);
        assert!(page(&json!({"Limit": 0})).is_err());
        assert!(page(&json!({"Limit": "abc"})).is_err());
        assert!(page(&json!({"Limit": 2.5})).is_err());
        assert!(page(&json!({"Before": {"$gt": ""}})).is_err());
        assert!(page(&json!("x")).is_err());
        assert_eq!(
            page(&json!({"Before": "m1"}))
                .unwrap()
                .before
                .unwrap()
                .as_str(),
            "m1"
        );
    }

    #[test]
    fn chat_requests_refuse_object_valued_and_malformed_ids() {
        assert!(chat(&json!({"GroupId": {"$gt": ""}}), "GroupId").is_err());
        assert!(chat(&json!({"GroupId": "a b"}), "GroupId").is_err());
        assert!(chat(&json!(null), "GroupId").is_err());
        assert!(chat(&json!({"GroupId": "g1"}), "GroupId").is_ok());
        assert!(group_member(&json!({"GroupId": "g1", "Member": 7})).is_err());
        assert!(receiver(&json!({"Receiver": ["x"]})).is_err());
    }

    #[test]
    fn groups_need_a_name_and_a_list_of_ids() {
        let ok = create_group(&json!({"Name": " Team ", "Participants": ["a", "b"]})).unwrap();
        assert_eq!(
            (
                ok.name.as_str(),
                ok.description.as_str(),
                ok.participants.len()
            ),
            ("Team", "", 2)
        );
        assert!(create_group(&json!({"Name": "", "Participants": []})).is_err());
        assert!(create_group(&json!({"Name": "T", "Participants": "a"})).is_err());
        assert!(create_group(&json!({"Name": "T", "Participants": [1]})).is_err());
        assert!(create_group(&json!({"Name": "T"})).is_err());
        let many: Vec<String> = (0..=MAX_PARTICIPANTS).map(|i| format!("u{i}")).collect();
        assert!(create_group(&json!({"Name": "T", "Participants": many})).is_err());
    }

    #[test]
    fn sends_need_real_content() {
        assert!(send_self(&Value::Null).is_err());
        assert!(send_self(&json!({"Content": 5})).is_err());
        assert!(send_self(&json!({"Content": "   "})).is_err());
        assert!(send_self(&json!({"Content": "x".repeat(4001)})).is_err());
        assert!(send_self(&json!({"Content": "hi", "ClientId": "c".repeat(65)})).is_err());
        let ok = send_self(&json!({"Content": "hi", "ClientId": "k1"})).unwrap();
        assert_eq!(ok.content.as_str(), "hi");
    }

    #[test]
    fn changes_to_messages_are_parsed_or_refused() {
        let ok = send_to(
            &json!({"ChatId": "c", "Content": "hi", "ReplyTo": "m1"}),
            "ChatId",
        );
        assert_eq!(ok.unwrap().reply_to.unwrap().as_str(), "m1");
        assert!(send_to(
            &json!({"ChatId": "c", "Content": "hi", "ReplyTo": 5}),
            "ChatId"
        )
        .is_err());
        assert!(send_to(
            &json!({"ChatId": "c", "Content": "hi", "ReplyTo": "a b"}),
            "ChatId"
        )
        .is_err());
        assert!(edit_message(&json!({"ChatId": "c", "MessageId": "m", "Content": "  "})).is_err());
        assert!(edit_message(&json!({"ChatId": "c", "Content": "x"})).is_err());
        assert_eq!(
            edit_message(&json!({"ChatId": "c", "MessageId": "m", "Content": "x"}))
                .unwrap()
                .content
                .as_str(),
            "x"
        );
        assert!(message(&json!({"ChatId": "c", "MessageId": {"$gt": ""}})).is_err());
        assert_eq!(read(&json!({"GroupId": "g"}), "GroupId").unwrap().1, None);
        assert_eq!(
            read(&json!({"ChatId": "c", "UpTo": "m1"}), "ChatId")
                .unwrap()
                .1,
            Some(MessageId::parse("m1").unwrap())
        );
        assert!(read(&json!({"ChatId": "c", "UpTo": 3}), "ChatId").is_err());
        assert!(mark_delivered(&json!({"ChatId": "c"})).is_err());
        assert!(mark_delivered(&json!({"ChatId": "c", "UpTo": "m1"})).is_ok());
        let react_to = |emoji: Value, on: Value| {
            react(&json!({"ChatId": "c", "MessageId": "m", "Emoji": emoji, "On": on}))
        };
        assert!(react_to(json!("👍🏽"), json!(true)).unwrap().on);
        for (emoji, on) in [
            (json!("👍👍"), json!(true)),
            (json!("a"), json!(true)),
            (json!(""), json!(true)),
            (json!("👍"), json!("yes")),
            (json!("👍"), Value::Null),
            (json!(1), json!(true)),
        ] {
            assert_eq!(react_to(emoji, on).unwrap_err().code, "bad_request");
        }
    }

    #[test]
    fn message_searches_need_words_and_well_formed_fields() {
        let found = search_messages(&json!({"Query": "Hello, wor"})).unwrap();
        assert_eq!(found.terms.words(), ["hello", "wor"]);
        assert_eq!((found.chat, found.before, found.limit), (None, None, 20));
        let found = search_messages(
            &json!({"Query": "x", "ChatId": "g1", "Before": "17-3-g1", "Limit": 500}),
        )
        .unwrap();
        assert_eq!(found.chat, Some(ChatId::parse("g1").unwrap()));
        assert_eq!(found.before, Some("17-3-g1".parse().unwrap()));
        assert_eq!(found.limit, 100);
        let long = "a ".repeat(200);
        let many = "a ".repeat(17);
        for payload in [
            json!({}),
            json!({"Query": ""}),
            json!({"Query": " ?!* \"\" :* & "}),
            json!({"Query": 5}),
            json!({"Query": "a\u{0}b"}),
            json!({"Query": long}),
            json!({"Query": many}),
            json!({"Query": "a", "ChatId": "no such/id"}),
            json!({"Query": "a", "ChatId": 3}),
            json!({"Query": "a", "Before": "m1"}),
            json!({"Query": "a", "Before": 17}),
            json!({"Query": "a", "Limit": 0}),
            json!({"Query": "a", "Limit": -1}),
            json!({"Query": "a", "Limit": "5"}),
            json!("hello"),
        ] {
            let refused = search_messages(&payload).unwrap_err();
            assert_eq!(refused.code, "bad_request", "{payload}");
        }
    }

    #[test]
    fn searches_refuse_control_characters() {
        for name in ["a\u{0}b", "\u{7}", "x\ny"] {
            let refused = search(&json!({"Name": name, "Type": "Search"})).unwrap_err();
            assert_eq!(refused.code, "bad_request", "{name:?}");
        }
    }

    #[test]
    fn searches_need_a_name_and_a_known_type() {
        assert!(search(&json!({"Name": 5, "Type": "Search"})).is_err());
        assert!(search(&json!({"Name": "a", "Type": "Nope"})).is_err());
        assert_eq!(
            search(&json!({"Name": "a", "Type": "Add"}))
                .unwrap()
                .purpose,
            SearchPurpose::Add
        );
    }
}
