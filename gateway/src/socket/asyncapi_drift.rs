//! docs/asyncapi.yaml held to the code. The requests the router handles, the events the gateway's
//! source emits, the events docs/api.md names and the fields of the wire structs must all be what
//! the document says, so an event or a field added, renamed or dropped fails here until the
//! document follows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use events_schema::events::AttachmentShared;
use events_schema::{Accepted, ChatId, Content, Emoji, MessageId, RefusalCode, UserId, UserName};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::reply::Failure;
use super::requests;
use super::router::REQUEST_EVENTS;
use crate::wire::*;

const DOCUMENT: &str = include_str!("../../../docs/asyncapi.yaml");
const API_MD: &str = include_str!("../../../docs/api.md");

/// This file, left out of the source scan: its own text names every event.
const THIS_FILE: &str = "socket/asyncapi_drift.rs";

// The document.

struct Doc {
    root: Value,
}

impl Doc {
    fn load() -> Self {
        let root = serde_yaml_ng::from_str(DOCUMENT).expect("docs/asyncapi.yaml is YAML");
        Self { root }
    }

    /// What a local `$ref` (`#/components/schemas/Id`) points at.
    fn pointer(&self, reference: &str) -> &Value {
        let path = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{reference}: only local references are used"));
        self.root
            .pointer(path)
            .unwrap_or_else(|| panic!("{reference} points at nothing"))
    }

    /// `value`, or what its chain of `$ref`s ends at.
    fn deref<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        for _ in 0..16 {
            match value.get("$ref").and_then(Value::as_str) {
                Some(reference) => value = self.pointer(reference),
                None => return value,
            }
        }
        panic!("a loop of $refs")
    }

    fn channels(&self) -> &Map<String, Value> {
        self.root["channels"].as_object().expect("channels")
    }

    fn operations(&self) -> &Map<String, Value> {
        self.root["operations"].as_object().expect("operations")
    }

    /// The channel address of each operation with this `action`, with the operation's id.
    fn addresses(&self, action: &str) -> BTreeMap<String, String> {
        self.operations()
            .iter()
            .filter(|(_, op)| op["action"] == action)
            .map(|(id, op)| (self.address(&op["channel"]), id.clone()))
            .collect()
    }

    fn address(&self, channel: &Value) -> String {
        self.deref(channel)["address"]
            .as_str()
            .expect("every channel has an address")
            .to_owned()
    }

    /// The message `key` of the channel of event `event` (null when there is none).
    fn message(&self, event: &str, key: &str) -> &Value {
        self.channels().get(event).map_or(&Value::Null, |channel| {
            self.deref(&channel["messages"][key])
        })
    }
}

/// Every `$ref` in `value`, with where it is.
fn references(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "$ref" {
                    if let Some(reference) = inner.as_str() {
                        found.push((at.to_owned(), reference.to_owned()));
                    }
                } else {
                    references(inner, &format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                references(inner, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

// Payloads against schemas: the part of JSON Schema the document uses ($ref, allOf, type, const,
// enum, properties, required, additionalProperties, items).

#[derive(Default)]
struct Flat {
    types: Option<Vec<String>>,
    properties: BTreeMap<String, Value>,
    required: BTreeSet<String>,
    additional: Option<Value>,
    items: Option<Value>,
    allowed: Option<Vec<Value>>,
}

/// A schema with its `$ref`s followed and its `allOf` merged into one.
fn flatten(doc: &Doc, schema: &Value) -> Flat {
    let schema = doc.deref(schema);
    let mut flat = Flat::default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let part = flatten(doc, part);
        flat.types = flat.types.or(part.types);
        flat.properties.extend(part.properties);
        flat.required.extend(part.required);
        match (&flat.additional, part.additional) {
            (_, Some(schema @ Value::Object(_))) => flat.additional = Some(schema),
            (None, other) => flat.additional = other,
            _ => {}
        }
        flat.items = flat.items.or(part.items);
        flat.allowed = flat.allowed.or(part.allowed);
    }
    match &schema["type"] {
        Value::String(one) => flat.types = Some(vec![one.clone()]),
        Value::Array(many) => {
            flat.types = Some(
                many.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
            )
        }
        _ => {}
    }
    if let Some(properties) = schema["properties"].as_object() {
        flat.properties
            .extend(properties.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(required) = schema["required"].as_array() {
        flat.required.extend(
            required
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned)),
        );
    }
    if !schema["additionalProperties"].is_null() {
        flat.additional = Some(schema["additionalProperties"].clone());
    }
    if !schema["items"].is_null() {
        flat.items = Some(schema["items"].clone());
    }
    if let Some(allowed) = schema["enum"].as_array() {
        flat.allowed = Some(allowed.clone());
    }
    if !schema["const"].is_null() {
        flat.allowed = Some(vec![schema["const"].clone()]);
    }
    flat
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against `schema`, adding each mismatch to `errors`. With `exact`, an object must
/// hold every property its schema lists and no other: a sample with every optional field set then
/// shows a field added, renamed or dropped on either side.
fn conform(
    doc: &Doc,
    value: &Value,
    schema: &Value,
    at: &str,
    exact: bool,
    errors: &mut Vec<String>,
) {
    let flat = flatten(doc, schema);
    let actual = type_of(value);
    if let Some(types) = &flat.types {
        let fits = types
            .iter()
            .any(|t| t == actual || (t == "number" && actual == "integer"));
        if !fits {
            errors.push(format!("{at}: a {actual}, the document says {types:?}"));
            return;
        }
    }
    if let Some(allowed) = &flat.allowed {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    match value {
        Value::Object(fields) => {
            for name in &flat.required {
                if !fields.contains_key(name) {
                    errors.push(format!("{at}.{name}: required by the document, missing"));
                }
            }
            for (name, inner) in fields {
                let inner_at = format!("{at}.{name}");
                if let Some(property) = flat.properties.get(name) {
                    conform(doc, inner, property, &inner_at, exact, errors);
                } else if let Some(additional @ Value::Object(_)) = &flat.additional {
                    conform(doc, inner, additional, &inner_at, exact, errors);
                } else if flat.additional == Some(Value::Bool(false)) {
                    errors.push(format!("{inner_at}: the document allows no such field"));
                } else if exact && !flat.properties.is_empty() {
                    errors.push(format!("{inner_at}: written, but not in the document"));
                }
            }
            if exact {
                for name in flat.properties.keys() {
                    if !fields.contains_key(name) {
                        errors.push(format!("{at}.{name}: in the document, but not written"));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(schema) = &flat.items {
                for (i, item) in items.iter().enumerate() {
                    conform(doc, item, schema, &format!("{at}[{i}]"), exact, errors);
                }
            }
        }
        _ => {}
    }
}

// The gateway's source: which event names it emits, and from where.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
}

/// Rust source as identifiers, string literals and punctuation, comments left out; enough to find
/// calls whatever their layout.
fn tokens(source: &str) -> Vec<Token> {
    let c: Vec<char> = source.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some((text, next)) = raw_string(&c, i) {
            out.push(Token::Str(text));
            i = next;
        } else if ch == '"' || (ch == 'b' && at(i + 1) == '"') {
            i += if ch == 'b' { 2 } else { 1 };
            let mut text = String::new();
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    text.push(c[i]);
                    i += 1;
                }
                if i < c.len() {
                    text.push(c[i]);
                }
                i += 1;
            }
            out.push(Token::Str(text));
            i += 1;
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped character literal: '\n', '\'', '\u{1F600}'.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or a label.
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(c[start..i].iter().collect()));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else {
            out.push(Token::Punct(ch));
            i += 1;
        }
    }
    out
}

/// A raw string literal (`r"…"`, `r#"…"#`, `br"…"`) starting at `i`: its text and where it ends.
fn raw_string(c: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') || (i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')) {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&h| h == '#').count();
    j += hashes;
    if c.get(j) != Some(&'"') {
        return None;
    }
    let start = j + 1;
    let mut k = start;
    while k < c.len() {
        if c[k] == '"'
            && c[k + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == '#')
                .count()
                == hashes
        {
            return Some((c[start..k].iter().collect(), k + 1 + hashes));
        }
        k += 1;
    }
    None
}

/// The tokens without `#[cfg(test)] mod … { … }`: test code emits nothing to clients.
fn without_tests(all: Vec<Token>) -> Vec<Token> {
    let cfg_test = tokens("#[cfg(test)]");
    let tokens = all;
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i..].starts_with(&cfg_test) {
            let mut j = i + cfg_test.len();
            // Further attributes, then `pub`/`pub(crate)`.
            while tokens.get(j) == Some(&Token::Punct('#')) {
                j = closing(&tokens, j + 1).map_or(j + 1, |end| end + 1);
            }
            if tokens.get(j) == Some(&Token::Ident("pub".into())) {
                j += 1;
                if tokens.get(j) == Some(&Token::Punct('(')) {
                    j = closing(&tokens, j).map_or(j, |end| end + 1);
                }
            }
            if tokens.get(j) == Some(&Token::Ident("mod".into()))
                && tokens.get(j + 2) == Some(&Token::Punct('{'))
            {
                if let Some(end) = closing(&tokens, j + 2) {
                    i = end + 1;
                    continue;
                }
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// The index of the bracket closing the one at `open`.
fn closing(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token {
            Token::Punct('(' | '[' | '{') => depth += 1,
            Token::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The arguments of the call whose `(` is at `open` that are a string literal alone.
fn literal_arguments(tokens: &[Token], open: usize) -> Vec<String> {
    let Some(close) = closing(tokens, open) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut depth = 0;
    let mut argument: Vec<&Token> = Vec::new();
    for token in &tokens[open + 1..close] {
        match token {
            Token::Punct('(' | '[' | '{') => depth += 1,
            Token::Punct(')' | ']' | '}') => depth -= 1,
            _ => {}
        }
        if depth == 0 && *token == Token::Punct(',') {
            if let [Token::Str(s)] = argument.as_slice() {
                found.push(s.clone());
            }
            argument.clear();
        } else {
            argument.push(token);
        }
    }
    if let [Token::Str(s)] = argument.as_slice() {
        found.push(s.clone());
    }
    found
}

/// A name as the protocol spells events: lowercase words joined by `-`.
fn event_like(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// The event names emitted in `source`: the literal names given to `emit(…)`, `.emit(…)`,
/// `emit_as(…)`, `Answer::event(…)` and `with_legacy(…)`, and those `answer_event` returns.
fn emitted_in(source: &str) -> BTreeSet<String> {
    let t = without_tests(tokens(source));
    let ident = |i: usize, name: &str| matches!(t.get(i), Some(Token::Ident(s)) if s == name);
    let punct = |i: usize, p: char| t.get(i) == Some(&Token::Punct(p));
    let mut names = BTreeSet::new();
    for i in 0..t.len() {
        let call = ["emit", "emit_as", "with_legacy"]
            .iter()
            .any(|name| ident(i, name))
            && punct(i + 1, '(')
            && !(i > 0 && ident(i - 1, "fn"));
        let answer = ident(i, "Answer")
            && punct(i + 1, ':')
            && punct(i + 2, ':')
            && ident(i + 3, "event")
            && punct(i + 4, '(');
        if call {
            names.extend(literal_arguments(&t, i + 1));
        } else if answer {
            names.extend(literal_arguments(&t, i + 4));
        } else if ident(i, "fn") && ident(i + 1, "answer_event") {
            // The answer's name chosen by the request (`search-user`'s `Type`).
            let open = (i..t.len()).find(|&j| punct(j, '{'));
            if let Some((open, close)) = open.and_then(|o| Some((o, closing(&t, o)?))) {
                names.extend(t[open..close].iter().filter_map(|token| match token {
                    Token::Str(s) => Some(s.clone()),
                    _ => None,
                }));
            }
        }
    }
    names.retain(|name| event_like(name));
    names
}

/// Every event the gateway emits, with the source files (under src/) that emit it.
fn emitted_events() -> BTreeMap<String, BTreeSet<String>> {
    fn walk(dir: &Path, root: &Path, found: &mut BTreeMap<String, BTreeSet<String>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, found);
                continue;
            }
            let file = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if !file.ends_with(".rs") || file == THIS_FILE {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for name in emitted_in(&source) {
                found.entry(name).or_default().insert(file.clone());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeMap::new();
    walk(&root, &root, &mut found);
    found
}

/// The events whose payload gets `Seq`: those emitted by the delivery of stored events.
fn delivered_events(emitted: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    emitted
        .iter()
        .filter(|(_, files)| files.iter().any(|f| f.starts_with("delivery/")))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The events docs/api.md names in its Socket.IO section: a backticked `name {…}` (an event with
/// its payload), or a backticked hyphenated name alone (`added-user-match`).
fn events_named_in_api_md() -> BTreeSet<String> {
    let start = API_MD
        .find("\n## Socket.IO")
        .expect("docs/api.md has a Socket.IO section");
    let section = &API_MD[start + 1..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    let mut names = BTreeSet::new();
    for span in section.split('`').skip(1).step_by(2) {
        match span.split_once(" {") {
            Some((head, _)) if event_like(head) => {
                names.insert(head.to_owned());
            }
            _ if event_like(span) && span.contains('-') => {
                names.insert(span.to_owned());
            }
            _ => {}
        }
    }
    names
}

// The checks.

#[test]
fn the_document_is_asyncapi_3_for_this_gateway() {
    let doc = Doc::load();
    assert_eq!(doc.root["asyncapi"], "3.0.0");
    assert_eq!(
        doc.root["info"]["title"],
        "ExpressChat server Socket.IO API"
    );
    assert_eq!(doc.root["info"]["version"], env!("CARGO_PKG_VERSION"));

    let mut refs = Vec::new();
    references(&doc.root, "#", &mut refs);
    for (at, reference) in &refs {
        let path = reference.strip_prefix('#').unwrap_or(reference);
        assert!(
            doc.root.pointer(path).is_some(),
            "{at}: {reference} points at nothing"
        );
    }

    for (name, channel) in doc.channels() {
        assert!(
            channel["address"] == name.as_str(),
            "channel {name}: named after its event"
        );
    }
    for (id, op) in doc.operations() {
        let channel = op["channel"]["$ref"].as_str().unwrap();
        let own = format!("{channel}/messages/");
        for message in op["messages"].as_array().unwrap() {
            let message = message["$ref"].as_str().unwrap();
            assert!(
                message.starts_with(&own),
                "{id}: {message} is not of its channel"
            );
        }
        match op["action"].as_str() {
            Some("receive") => {
                // The acknowledgement: on the request's own channel, success or failure.
                let reply = &op["reply"];
                assert_eq!(
                    reply["channel"]["$ref"], channel,
                    "{id}: the reply is on its channel"
                );
                let replies: Vec<&str> = reply["messages"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{id}: a request has a reply"))
                    .iter()
                    .map(|m| m["$ref"].as_str().unwrap())
                    .collect();
                assert!(replies.iter().all(|m| m.starts_with(&own)), "{id}");
                let failure = doc.pointer(&format!("{own}failure"));
                assert_eq!(
                    failure["$ref"], "#/components/messages/FailureAck",
                    "{id}: a request can fail"
                );
                assert!(replies.contains(&format!("{own}failure").as_str()), "{id}");
            }
            Some("send") => assert!(op.get("reply").is_none(), "{id}: no ack is asked"),
            other => panic!("{id}: action {other:?}"),
        }
    }

    // Every message has a payload and an example that fits it.
    let mut errors = Vec::new();
    for (name, channel) in doc.channels() {
        for (key, message) in channel["messages"].as_object().unwrap() {
            let message = doc.deref(message);
            let at = format!("{name}/{key}");
            assert!(message["payload"].is_object(), "{at}: no payload");
            let examples = message["examples"].as_array();
            assert!(examples.is_some_and(|e| !e.is_empty()), "{at}: no example");
            for example in examples.into_iter().flatten() {
                conform(
                    &doc,
                    &example["payload"],
                    &message["payload"],
                    &at,
                    false,
                    &mut errors,
                );
            }
        }
    }
    assert!(
        errors.is_empty(),
        "examples unlike their payloads:\n{}",
        errors.join("\n")
    );
}

#[test]
fn receive_operations_are_the_routed_requests() {
    let doc = Doc::load();
    let documented: BTreeSet<String> = doc.addresses("receive").into_keys().collect();
    let routed: BTreeSet<String> = REQUEST_EVENTS.iter().map(|&e| e.to_owned()).collect();
    assert_eq!(routed.len(), REQUEST_EVENTS.len(), "an event routed twice");
    let missing: Vec<_> = routed.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/asyncapi.yaml: requests handled but without a receive operation: {missing:?}; \
         receive operations no request is routed for: {stale:?}"
    );
}

#[test]
fn send_operations_are_the_emitted_events() {
    let doc = Doc::load();
    let emitted = emitted_events();
    // The scan itself: each way of emitting is still found.
    for (event, by) in [
        ("user-details", "Answer::event"),
        ("add-member-fail", "with_legacy"),
        ("receipt", "emit_as"),
        ("auth-failure", ".emit"),
        ("added-user-match", "answer_event"),
        ("presence-changed", "Presence::emit"),
        ("add-member-success", "emit over several lines"),
    ] {
        assert!(
            emitted.contains_key(event),
            "the scan no longer finds {event} ({by})"
        );
    }
    let documented: BTreeSet<String> = doc.addresses("send").into_keys().collect();
    let missing: Vec<String> = emitted
        .iter()
        .filter(|(event, _)| !documented.contains(*event))
        .map(|(event, files)| format!("{event} (emitted in {files:?})"))
        .collect();
    let stale: Vec<&String> = documented
        .iter()
        .filter(|event| !emitted.contains_key(*event))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/asyncapi.yaml: events emitted but without a send operation: {missing:?}; \
         send operations for events nothing emits: {stale:?}"
    );

    // Deliveries carry `Seq`, and are what `sync` can return.
    let delivered = delivered_events(&emitted);
    let sends = doc.addresses("send");
    for event in &documented {
        let files = &emitted[event];
        assert!(
            !delivered.contains(event) || files.iter().all(|f| f.starts_with("delivery/")),
            "{event} is emitted both as a delivery and not: {files:?}"
        );
        let op = &doc.operations()[&sends[event]];
        for message in op["messages"].as_array().unwrap() {
            let payload = &doc.deref(message)["payload"];
            let flat = flatten(&doc, payload);
            assert_eq!(
                flat.required.contains("Seq"),
                delivered.contains(event),
                "{event}: Seq is required exactly in deliveries"
            );
        }
    }
    let syncable: BTreeSet<String> = doc.pointer("#/components/schemas/SyncedEvent")["properties"]
        ["Event"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        syncable, delivered,
        "SyncedEvent.Event lists the deliveries"
    );
}

#[test]
fn events_named_in_api_md_are_channels() {
    let doc = Doc::load();
    let named = events_named_in_api_md();
    let channels: BTreeSet<String> = doc.channels().keys().cloned().collect();
    let missing: Vec<_> = named.difference(&channels).collect();
    let unnamed: Vec<_> = channels.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "docs/api.md names events docs/asyncapi.yaml does not have: {missing:?}"
    );
    assert!(
        unnamed.is_empty(),
        "docs/asyncapi.yaml has events docs/api.md does not name: {unnamed:?}"
    );
}

// Samples of each payload, built from the wire structs with every optional field set.

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn chat(id: &str) -> ChatId {
    ChatId::parse(id).unwrap()
}

fn message(id: &str) -> MessageId {
    MessageId::parse(id).unwrap()
}

fn value(payload: &impl Serialize) -> Value {
    serde_json::to_value(payload).unwrap()
}

fn ack(payload: impl Serialize) -> Value {
    value(&Success::new(payload))
}

const AT: &str = "2026-11-24T09:30:00.000Z";

fn attachment() -> AttachmentShared {
    AttachmentShared {
        file_id: "f1".into(),
        name: Some("plan.pdf".into()),
        size: 48_213,
        content_type: "application/pdf".into(),
    }
}

fn receipts() -> Receipts {
    [(
        "u1".to_owned(),
        Receipt {
            delivered: Some(message("m1")),
            read: None,
        },
    )]
    .into_iter()
    .collect()
}

fn reactions() -> Reactions {
    [("👍".to_owned(), vec![user("u2")])].into_iter().collect()
}

fn read_status() -> ReadStatus {
    [("u1".to_owned(), Reading::Read)].into_iter().collect()
}

/// `(channel, message key, payload)` for every message with a wire struct.
fn samples() -> Vec<(&'static str, &'static str, Value)> {
    let (u1, u2, c1, g1, m1) = (
        user("u1"),
        user("u2"),
        chat("c1"),
        chat("g1"),
        message("m1"),
    );
    let content = Content::parse("hi").unwrap();
    let files = [attachment()];
    let accepted = Accepted {
        chat_id: Some(c1.clone()),
        message_id: Some(m1.clone()),
        occurred_at: chrono::DateTime::from_timestamp_millis(1_795_000_000_000),
        ..Accepted::default()
    };
    let sent = || Sent::from(&accepted);
    let user_details = || UserDetails {
        email: "ada@example.com".into(),
        id: &u1,
        name: "Ada".into(),
        sessions: 2,
    };
    let found = || FoundUsers {
        users: vec![FoundUser {
            email: "bob@example.com".into(),
            name: "Bob".into(),
            id: u2.clone(),
        }],
    };
    let self_chat = || SelfChat {
        has_more: true,
        messages: vec![SelfMessage {
            content: String::new(),
            deleted: true,
            edited_at: Some(AT.into()),
            reactions: reactions(),
            timestamp: AT.into(),
            attachments: vec![attachment()],
            id: m1.clone(),
        }],
        name: "Ada".into(),
        receipts: receipts(),
    };
    let check = || ChatCheck {
        chat_id: Some(c1.clone()),
        exists: 1,
        partner: "Bob".into(),
        partner_id: u2.clone(),
    };
    let personal_created = || PersonalChatCreated {
        chat_id: Some(&c1),
        partner: "Bob",
        partner_id: &u2,
    };
    let personal_chat = || PersonalChat {
        has_more: true,
        messages: vec![PersonalMessage {
            content: "hi".into(),
            deleted: true,
            edited_at: Some(AT.into()),
            reactions: reactions(),
            read_status: read_status(),
            reply_to: Some(message("m0")),
            attachments: vec![attachment()],
            sender: u1.clone(),
            timestamp: AT.into(),
            id: m1.clone(),
        }],
        partner: Some("Bob"),
        partner_id: Some(&u2),
        receipts: receipts(),
        user: "Ada",
        user_id: &u1,
    };
    let group_created = || GroupCreated {
        group_id: &g1,
        name: "Team",
    };
    let group_chat = || GroupChat {
        admin: Some(u1.clone()),
        description: "planning".into(),
        group_id: g1.clone(),
        has_more: false,
        messages: vec![GroupMessage {
            content: "hi".into(),
            deleted: true,
            edited_at: Some(AT.into()),
            id: m1.clone(),
            reactions: reactions(),
            read_status: read_status(),
            reply_to: Some(message("m0")),
            attachments: vec![attachment()],
            sender: "Ada".into(),
            sender_id: u1.clone(),
            timestamp: AT.into(),
            underscore_id: m1.clone(),
        }],
        name: "Team".into(),
        participants: [("u1".to_owned(), "Ada".to_owned())].into_iter().collect(),
        receipts: receipts(),
    };
    let kicked = || Kicked {
        group_id: &g1,
        member: &u2,
    };
    let admin_changed = || AdminChanged {
        admin: &u2,
        group_id: &g1,
    };
    let group_left = || GroupLeft {
        group_id: &g1,
        message: "You left the group",
    };
    let group_deleted = || GroupDeleted { group_id: &g1 };
    let chat_message = || ChatMessage {
        chat_id: &c1,
        content: &content,
        message_id: &m1,
        reply_to: Some(&m1),
        attachments: &files,
        sender: "Ada",
        sender_id: &u1,
        timestamp: AT,
    };
    let read_receipt = || ReadReceipt {
        chat_id: &c1,
        reader: &u2,
    };
    let changed = || MessageChanged {
        chat_id: &c1,
        message_id: &m1,
    };
    let presence = || UserPresence {
        last_seen: Some(AT.into()),
        online: false,
        user_id: u1.clone(),
    };
    let data =
        RawValue::from_string(r#"{"ChatId":"c1","MessageId":"m1","Seq":"9"}"#.into()).unwrap();
    let synced = || Synced {
        events: vec![SyncedEvent {
            data: &data,
            event: "message-deleted",
        }],
        has_more: true,
        seq: "9".into(),
    };
    let search_results = || SearchResults {
        has_more: true,
        next: Some("1795000000000-3-g1".into()),
        results: vec![SearchResult {
            chat_id: g1.clone(),
            content: "hello there".into(),
            message_id: m1.clone(),
            sender_id: u1.clone(),
            timestamp: AT.into(),
        }],
    };
    let emoji = Emoji::parse("👍").unwrap();
    let name = UserName::parse("Ada L").unwrap();
    let failure = Failure::forbidden("not a member of this chat");

    vec![
        // Acknowledgements.
        ("fetch-user-details", "ack", ack(user_details())),
        ("search-user", "ack", ack(found())),
        ("fetch-self-chat", "ack", ack(self_chat())),
        ("send-self-message", "ack", ack(sent())),
        ("check-chat", "ack", ack(check())),
        ("create-personal-chat", "ack", ack(personal_created())),
        ("fetch-personal-chat", "ack", ack(personal_chat())),
        ("send-personal-message", "ack", ack(sent())),
        (
            "read-personal-message",
            "ack",
            ack(PersonalRead { chat_id: &c1 }),
        ),
        ("create-group-chat", "ack", ack(group_created())),
        ("fetch-group-chat", "ack", ack(group_chat())),
        ("send-group-message", "ack", ack(sent())),
        (
            "read-group-message",
            "ack",
            ack(GroupRead { group_id: &g1 }),
        ),
        (
            "add-member",
            "ack",
            ack(MemberAdded {
                group_id: &g1,
                member: &u2,
            }),
        ),
        ("kickout", "ack", ack(kicked())),
        ("change-admin", "ack", ack(admin_changed())),
        ("leave-grp", "ack", ack(group_left())),
        ("delete-grp", "ack", ack(group_deleted())),
        ("edit-message", "ack", ack(changed())),
        ("delete-message", "ack", ack(changed())),
        ("react", "ack", ack(changed())),
        ("mark-delivered", "ack", ack(Delivered { chat_id: &c1 })),
        ("typing", "ack", ack(Map::new())),
        ("set-presence", "ack", ack(Map::new())),
        ("sync", "ack", ack(synced())),
        ("search-messages", "ack", ack(search_results())),
        (
            "typing",
            "failure",
            value(&FailureAck {
                code: failure.code,
                message: &failure.message,
                success: 0,
            }),
        ),
        // The connection.
        (
            "auth-failure",
            "event",
            value(&AuthFailure {
                reason: "session ended",
            }),
        ),
        (
            "access-token",
            "event",
            value(&AccessToken {
                access_token: "a.b.c",
            }),
        ),
        (
            "user-id",
            "event",
            value(&UserIdentity {
                user_id: &u1,
                user_name: "Ada",
            }),
        ),
        (
            "personal-chat-list",
            "event",
            value(&PersonalChatList {
                chats: vec![PersonalChatEntry {
                    last_chat: Some(AT.into()),
                    partner: "Bob".into(),
                    partner_id: u2.clone(),
                    unread: 3,
                    id: c1.clone(),
                }],
            }),
        ),
        (
            "group-chat-list",
            "event",
            value(&GroupChatList {
                groups: vec![GroupChatEntry {
                    last_chat: None,
                    name: "Team".into(),
                    unread: 1,
                    id: g1.clone(),
                }],
            }),
        ),
        (
            "presence",
            "event",
            value(&PresenceList {
                users: vec![presence()],
            }),
        ),
        (
            "request-failed",
            "event",
            value(&failure.request_failed("kickout")),
        ),
        // Answers to the requesting socket.
        ("user-details", "event", value(&user_details())),
        ("searched-user", "event", value(&found())),
        ("added-user-match", "event", value(&found())),
        ("self-chat", "event", value(&self_chat())),
        ("create-chat-result", "event", value(&check())),
        (
            "create-personal-chat-creator",
            "event",
            value(&personal_created()),
        ),
        ("personal-chat", "event", value(&personal_chat())),
        (
            "create-group-chat-creator",
            "event",
            value(&group_created()),
        ),
        ("group-chat", "event", value(&group_chat())),
        ("kickout-successful", "event", value(&kicked())),
        (
            "change-admin-success-creator",
            "event",
            value(&admin_changed()),
        ),
        ("group-left-success", "event", value(&group_left())),
        (
            "delete-group-chat-creator",
            "event",
            value(&group_deleted()),
        ),
        (
            "add-member-fail",
            "event",
            value(&LegacyFailure {
                message: "Already in Group",
            }),
        ),
        (
            "group-left-fail",
            "event",
            value(&LegacyFailure {
                message: "the admin cannot leave; hand over admin first",
            }),
        ),
        // Deliveries (their `Seq` is added where they are emitted).
        (
            "receive-self-message",
            "event",
            value(&SelfMessageReceived {
                chat_id: &chat("u1"),
                content: &content,
                message_id: &m1,
                timestamp: AT,
                attachments: &files,
            }),
        ),
        ("receive-personal-message", "event", value(&chat_message())),
        ("receive-group-message", "event", value(&chat_message())),
        ("read-personal-msg-ack", "event", value(&read_receipt())),
        ("read-grp-msg-ack", "event", value(&read_receipt())),
        (
            "create-personal-chat-partner",
            "event",
            value(&personal_created()),
        ),
        (
            "create-group-chat-receiver",
            "event",
            value(&group_created()),
        ),
        (
            "add-member-success",
            "event",
            value(&MemberJoined {
                chat_id: &g1,
                member: &u2,
                member_name: "Bob",
            }),
        ),
        (
            "new-grp-added",
            "event",
            value(&AddedToGroup { chat_id: &g1 }),
        ),
        (
            "kicked-out",
            "event",
            value(&KickedOut {
                group_id: &g1,
                group_name: "Team",
            }),
        ),
        (
            "someone-kicked-out",
            "event",
            value(&SomeoneKickedOut {
                group_id: &g1,
                group_name: "Team",
                member: &u2,
            }),
        ),
        (
            "change-admin-success-receiver",
            "event",
            value(&admin_changed()),
        ),
        (
            "user-left-grp",
            "event",
            value(&UserLeftGroup {
                group_id: &g1,
                user: &u2,
                user_name: "Bob",
            }),
        ),
        (
            "delete-grp-success-receiver",
            "event",
            value(&group_deleted()),
        ),
        (
            "message-edited",
            "event",
            value(&EditedMessage {
                chat_id: &c1,
                content: &content,
                edited_at: AT,
                message_id: &m1,
            }),
        ),
        (
            "message-deleted",
            "event",
            value(&DeletedMessage {
                chat_id: &c1,
                message_id: &m1,
            }),
        ),
        (
            "reaction",
            "event",
            value(&ReactionChanged {
                chat_id: &c1,
                emoji: &emoji,
                message_id: &m1,
                on: true,
                user_id: &u1,
            }),
        ),
        (
            "receipt",
            "event",
            value(&ReceiptMoved {
                chat_id: &c1,
                delivered: Some(&m1),
                read: None,
                user_id: &u1,
            }),
        ),
        // Typing and presence.
        (
            "typing",
            "event",
            value(&TypingChanged {
                chat_id: &c1,
                typing: true,
                user_id: &u1,
            }),
        ),
        ("presence-changed", "presence", value(&presence())),
        (
            "presence-changed",
            "rename",
            value(&NameChanged {
                name: &name,
                user_id: &u1,
            }),
        ),
    ]
}

/// Messages with no wire struct to build them from: `rename`'s ack is made in its handler.
const NO_WIRE_STRUCT: &[(&str, &str)] = &[("rename", "ack")];

#[test]
fn wire_payloads_have_exactly_the_documented_fields() {
    let doc = Doc::load();
    let delivered = delivered_events(&emitted_events());
    let mut errors = Vec::new();
    let mut covered = BTreeSet::new();
    for (event, key, mut sample) in samples() {
        if delivered.contains(event) {
            sample["Seq"] = json!("9");
        }
        let message = doc.message(event, key);
        assert!(message.is_object(), "{event}/{key}: no such message");
        conform(
            &doc,
            &sample,
            &message["payload"],
            &format!("{event}/{key}"),
            true,
            &mut errors,
        );
        covered.insert((event.to_owned(), key.to_owned()));
    }
    assert!(
        errors.is_empty(),
        "docs/asyncapi.yaml and the wire structs differ:\n{}",
        errors.join("\n")
    );
    // Every message the server sends has a sample: the events and the acks. The failure acks are
    // one shared message, so one sample serves them all.
    let failure = "#/components/messages/FailureAck";
    assert!(covered.iter().any(|(_, key)| key == "failure"));
    for (event, channel) in doc.channels() {
        for (key, message) in channel["messages"].as_object().unwrap() {
            let sampled = key == "request"
                || message["$ref"] == failure
                || NO_WIRE_STRUCT.contains(&(event.as_str(), key.as_str()))
                || covered.contains(&(event.clone(), key.clone()));
            assert!(
                sampled,
                "{event}/{key}: no sample built from its wire struct"
            );
        }
    }
}

fn parsed<T>(result: Result<T, Failure>) -> Result<(), Failure> {
    result.map(|_| ())
}

/// A request's parser, its result left out.
type Parse = fn(&Value) -> Result<(), Failure>;

/// Each request's parser, for the requests parsed before their handler's work.
fn parsers() -> Vec<(&'static str, Parse)> {
    vec![
        ("fetch-user-details", requests::nothing),
        ("search-user", |p| parsed(requests::search(p))),
        ("fetch-self-chat", |p| parsed(requests::page(p))),
        ("send-self-message", |p| parsed(requests::send_self(p))),
        ("check-chat", |p| parsed(requests::receiver(p))),
        ("create-personal-chat", |p| parsed(requests::receiver(p))),
        ("fetch-personal-chat", |p| {
            parsed(requests::chat_page(p, "ChatId"))
        }),
        ("send-personal-message", |p| {
            parsed(requests::send_to(p, "ChatId"))
        }),
        ("read-personal-message", |p| {
            parsed(requests::read(p, "ChatId"))
        }),
        ("create-group-chat", |p| parsed(requests::create_group(p))),
        ("fetch-group-chat", |p| {
            parsed(requests::chat_page(p, "GroupId"))
        }),
        ("send-group-message", |p| {
            parsed(requests::send_to(p, "GroupId"))
        }),
        ("read-group-message", |p| {
            parsed(requests::read(p, "GroupId"))
        }),
        ("add-member", |p| parsed(requests::group_member(p))),
        ("kickout", |p| parsed(requests::group_member(p))),
        ("change-admin", |p| parsed(requests::group_member(p))),
        ("leave-grp", |p| parsed(requests::chat(p, "GroupId"))),
        ("delete-grp", |p| parsed(requests::chat(p, "GroupId"))),
        ("edit-message", |p| parsed(requests::edit_message(p))),
        ("delete-message", |p| parsed(requests::message(p))),
        ("react", |p| parsed(requests::react(p))),
        ("mark-delivered", |p| parsed(requests::mark_delivered(p))),
        ("typing", |p| parsed(requests::typing(p))),
        ("set-presence", |p| parsed(requests::set_presence(p))),
        ("search-messages", |p| parsed(requests::search_messages(p))),
    ]
}

/// Requests parsed inside their handler, with no parser of their own to call here.
const PARSED_IN_HANDLER: &[&str] = &["rename", "sync"];

#[test]
fn request_schemas_say_what_the_parsers_require() {
    let doc = Doc::load();
    let parsers = parsers();
    let mut errors = Vec::new();
    for event in REQUEST_EVENTS {
        let Some((_, parse)) = parsers.iter().find(|(name, _)| name == event) else {
            assert!(
                PARSED_IN_HANDLER.contains(event),
                "{event}: no parser in this test"
            );
            continue;
        };
        let request = doc.message(event, "request");
        let schema = flatten(&doc, &request["payload"]);
        assert_ne!(
            schema.additional,
            Some(Value::Bool(false)),
            "{event}: the parsers ignore unknown fields"
        );
        for example in request["examples"].as_array().unwrap() {
            let example = &example["payload"];
            if let Err(f) = parse(example) {
                errors.push(format!("{event}: the example {example} is refused: {f:?}"));
                continue;
            }
            let fields = example.as_object().unwrap();
            for field in fields.keys() {
                let mut without = fields.clone();
                without.remove(field);
                let outcome = parse(&Value::Object(without)).map_err(|f| f.code);
                match (schema.required.contains(field), outcome) {
                    (true, Ok(())) => errors.push(format!(
                        "{event}: {field} is required by the document, not by the parser"
                    )),
                    (false, Err(code)) => errors.push(format!(
                        "{event}: {field} is optional in the document, required by the parser ({code})"
                    )),
                    (true, Err(code)) if code != "bad_request" => errors.push(format!(
                        "{event}: without {field}: {code}, not bad_request"
                    )),
                    _ => {}
                }
            }
            for field in &schema.required {
                if !fields.contains_key(field) {
                    errors.push(format!("{event}: the example lacks required {field}"));
                }
            }
            let mut extra = fields.clone();
            extra.insert("SomethingElse".into(), json!(1));
            if parse(&Value::Object(extra)).is_err() {
                errors.push(format!("{event}: an unknown field is refused"));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "request schemas in docs/asyncapi.yaml and the parsers differ:\n{}",
        errors.join("\n")
    );
}

#[test]
fn refusal_codes_are_the_ones_answered() {
    let doc = Doc::load();
    let documented: BTreeSet<String> = doc.pointer("#/components/schemas/RefusalCode")["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let refused = [
        RefusalCode::BadRequest,
        RefusalCode::NotFound,
        RefusalCode::Forbidden,
        RefusalCode::Conflict,
        RefusalCode::Internal,
    ];
    // A new refusal fails to compile here, and so is listed above.
    for code in refused {
        match code {
            RefusalCode::BadRequest
            | RefusalCode::NotFound
            | RefusalCode::Forbidden
            | RefusalCode::Conflict
            | RefusalCode::Internal => {}
        }
    }
    let answered: BTreeSet<String> = refused
        .iter()
        .map(|c| c.as_str())
        .chain([
            Failure::bad_request("").code,
            Failure::not_found("").code,
            Failure::forbidden("").code,
            Failure::gone("").code,
            Failure::rate_limited().code,
            Failure::stopping().code,
            Failure::internal().code,
        ])
        .map(str::to_owned)
        .collect();
    assert_eq!(documented, answered);
}

#[test]
fn the_source_scan_finds_calls_however_written() {
    let source = r####"
        // emit(a, "in-a-comment");
        /* Answer::event("in-a-block", &x) /* nested */ */
        fn emit(state: &S, event: &'static str) {}
        fn f<'a>(x: &'a str) {
            let quote = '"';
            let s = "emit(a, \"in-a-string\")";
            let r = r#"with_legacy("in-a-raw-string")"#;
            emit(
                state,
                d,
                to,
                "split-over-lines",
                &payload,
            );
            socket.emit("method-call", &failure.request_failed("connect"));
            Answer::event(
                "an-answer",
                &x,
            )
            f.with_legacy("legacy-fail");
            outbound::emit(&socket, event, &payload);
        }
        pub fn answer_event(self) -> &'static str {
            match self { A => "first-answer", B => "second-answer" }
        }
        #[cfg(test)]
        mod tests {
            fn t() { emit(s, d, to, "in-a-test", &p); }
        }
    "####;
    let found: Vec<String> = emitted_in(source).into_iter().collect();
    assert_eq!(
        found,
        [
            "an-answer",
            "first-answer",
            "legacy-fail",
            "method-call",
            "second-answer",
            "split-over-lines"
        ]
    );
}
