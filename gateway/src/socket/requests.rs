//! Socket payloads parsed into typed requests, in one place. Past this module nothing is a raw
//! `serde_json::Value` that still needs checking.

use events_schema::{ClientId, Content, MessageId};
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
    let map = object(payload, false)?;
    let content = Content::parse(required_str(&map, "Content")?)
        .map_err(|e| Failure::bad_request(format!("Content: {e}")))?;
    let client_id = optional_str(&map, "ClientId")?
        .map(|raw| ClientId::parse(raw).map_err(|e| Failure::bad_request(e.to_string())))
        .transpose()?;
    Ok(SendSelfRequest { content, client_id })
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
