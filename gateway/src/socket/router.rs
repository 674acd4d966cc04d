//! Event name → handler. One handler per socket routes every event by name (rather than one
//! registered closure per event, each holding its own copy of the context) to the socket's worker.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::{Event, SocketRef, State, TryData};

use super::reply::Reply;
use super::rooms::SocketUser;
use super::worker::Worker;
use super::{groups, message_changes, personal, presence, search, self_chat, sync, users};
use crate::limits::SocketSlot;
use crate::state::AppState;

/// Registers the handlers of a socket: its requests are queued for its worker (see
/// [`super::worker`]).
///
/// `first` runs before any request (the on-connect events), so a request sent the moment the
/// socket connects is answered after them; when it answers `false`, no request is handled at all.
pub fn register(
    socket: &SocketRef,
    user: &SocketUser,
    slot: SocketSlot,
    first: impl Future<Output = bool> + Send + 'static,
) {
    let worker = Arc::new(Worker::new(user.clone(), slot));
    // Boxed, so the greeting's state is freed once sent instead of sizing the task for its life.
    let first: Pin<Box<dyn Future<Output = bool> + Send>> = Box::pin(first);
    tokio::spawn(worker.clone().start(first));
    socket.on_fallback(
        move |socket: SocketRef,
              Event(event): Event,
              TryData(data): TryData<Value>,
              State(state): State<AppState>,
              reply: Reply| {
            // No payload at all (`emit("fetch-user-details")`) reads as null; each request
            // parser decides whether that is acceptable.
            let payload = data.unwrap_or(Value::Null);
            route(&worker, state, &socket, &event, payload, reply);
            // The work runs on the socket's worker; socketioxide gets a finished future.
            std::future::ready(())
        },
    );
}

/// Every request: its event name and its handler. One list makes both the dispatch ([`route`])
/// and, for the test that holds docs/asyncapi.yaml to the code, the names handled.
macro_rules! routes {
    ($($name:literal => $handler:path),* $(,)?) => {
        /// Queues the request for the socket's worker; an event that names no request is ignored.
        fn route(
            worker: &Arc<Worker>,
            state: AppState,
            socket: &SocketRef,
            event: &str,
            payload: Value,
            reply: Reply,
        ) {
            match event {
                $($name => worker.enqueue(state, socket, $name, $handler, payload, reply),)*
                _ => tracing::debug!(event, "an event that names no request: ignored"),
            }
        }

        /// The events [`route`] handles.
        #[cfg(test)]
        pub(crate) const REQUEST_EVENTS: &[&str] = &[$($name),*];
    };
}

routes! {
    "fetch-user-details" => users::fetch_user_details,
    "search-user" => users::search_user,
    "fetch-self-chat" => self_chat::fetch_self_chat,
    "send-self-message" => self_chat::send_self_message,
    "check-chat" => personal::check_chat,
    "create-personal-chat" => personal::create_personal_chat,
    "fetch-personal-chat" => personal::fetch_personal_chat,
    "send-personal-message" => personal::send_personal_message,
    "read-personal-message" => personal::read_personal_message,
    "create-group-chat" => groups::create_group_chat,
    "fetch-group-chat" => groups::fetch_group_chat,
    "send-group-message" => groups::send_group_message,
    "read-group-message" => groups::read_group_message,
    "add-member" => groups::add_member,
    "kickout" => groups::kickout,
    "change-admin" => groups::change_admin,
    "leave-grp" => groups::leave_group,
    "delete-grp" => groups::delete_group,
    "edit-message" => message_changes::edit_message,
    "delete-message" => message_changes::delete_message,
    "react" => message_changes::react,
    "mark-delivered" => message_changes::mark_delivered,
    "typing" => presence::typing,
    "set-presence" => presence::set_presence,
    "rename" => users::rename,
    "sync" => sync::sync,
    "search-messages" => search::search_messages,
}
