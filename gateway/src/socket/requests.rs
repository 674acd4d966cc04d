//! Socket payloads parsed into typed requests, in one place. Past this module nothing is a raw
//! `serde_json::Value` that still needs checking.

use events_schema::{ChatId, ClientId, Content, Description, GroupName, MessageId, UserId};
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

/// `send-personal-message {ChatId, Content, ClientId?}` and `send-group-message {GroupId, …}`.
pub fn send_to(payload: &Value, field: &str) -> Result<(ChatId, SendSelfRequest), Failure> {
    let map = object(payload, false)?;
    let chat = required_chat(&map, field)?;
    Ok((chat, send_fields(&map)?))
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
