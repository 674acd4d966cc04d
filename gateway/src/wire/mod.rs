//! The wire format of what the gateway emits and acknowledges on Socket.IO, and of the HTTP API's
//! bodies (docs/api.md): one struct per payload, with the protocol's field names (PascalCase,
//! `_id`, the original's camelCase on connect and over HTTP), grouped by family. An event whose two sides carry the same fields (the
//! creator's answer and the other members' delivery, a personal and a group message) shares one
//! struct; the doc of each names its events.
//!
//! Fields are declared in the order their JSON has always had them: sorted by name, bytewise, as
//! serde_json writes a map. A payload's bytes are the same whether it is sent as the struct or
//! through a `serde_json::Value`, and the same as before these structs existed; each family's
//! tests check both the fields and that order. A `None` is written `null` unless the struct says
//! it is left out.

mod acks;
mod changes;
mod connect;
mod groups;
mod http;
mod messages;
mod personal;
mod presence;
mod search;
mod self_chat;
mod sync;
mod users;

use chrono::{DateTime, SecondsFormat, Utc};

pub use acks::{FailureAck, LegacyFailure, RequestFailed, Success};
pub use changes::{
    DeletedMessage, Delivered, EditedMessage, MessageChanged, ReactionChanged, Reactions, Receipt,
    ReceiptMoved, Receipts,
};
pub use connect::{
    AccessToken, AuthFailure, GroupChatEntry, GroupChatList, PersonalChatEntry, PersonalChatList,
    UserIdentity,
};
pub use groups::{
    AddedToGroup, AdminChanged, GroupChat, GroupCreated, GroupDeleted, GroupLeft, GroupMessage,
    GroupRead, Kicked, KickedOut, MemberAdded, MemberJoined, SomeoneKickedOut, UserLeftGroup,
};
pub use http::{Outcome, Refreshed, SignedIn};
pub use messages::{ChatMessage, ReadReceipt, ReadStatus, Reading, Sent};
pub use personal::{ChatCheck, PersonalChat, PersonalChatCreated, PersonalMessage, PersonalRead};
pub use presence::{NameChanged, PresenceList, TypingChanged, UserPresence};
pub use search::{SearchResult, SearchResults};
pub use self_chat::{SelfChat, SelfMessage, SelfMessageReceived};
pub use sync::{Synced, SyncedEvent};
pub use users::{FoundUser, FoundUsers, UserDetails};

/// ISO 8601 UTC with milliseconds (`2026-11-24T09:30:00.000Z`), as the protocol writes every time.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Checks that `payload` is `expected`, field for field, and that its fields are written in the
/// order `expected` has them as a `serde_json::Value` (bytewise by name): its bytes are unchanged.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_wire(payload: &impl serde::Serialize, expected: serde_json::Value) {
    let value = serde_json::to_value(payload).unwrap();
    assert_eq!(value, expected, "the fields");
    assert_eq!(
        serde_json::to_string(payload).unwrap(),
        serde_json::to_string(&expected).unwrap(),
        "the bytes, field order included"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at = DateTime::from_timestamp_millis(1_795_000_000_000).unwrap();
        assert_eq!(timestamp(at), "2026-11-18T11:06:40.000Z");
    }
}
