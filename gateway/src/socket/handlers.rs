//! The client events of this slice: account and search, self chat; and the on-connect events.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use events_schema::{ChatId, Command, UserId};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use socketioxide::extract::{Event, SocketRef, State, TryData};

use super::chats;
use super::outbound;
use super::reply::{Failure, Reply};
use super::requests;
use super::SocketUser;
use crate::state::AppState;
use crate::wire::timestamp;
use projection_service::queries;

/// No request may hang: past this, the client gets an `internal` failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a successful request answers: an event to the requesting socket, and the ack's fields.
pub struct Answer {
    emit: Option<(&'static str, Value)>,
    ack: Value,
}

impl Answer {
    /// The event, with its payload also in the ack.
    pub(super) fn event(name: &'static str, payload: Value) -> Self {
        Self {
            ack: payload.clone(),
            emit: Some((name, payload)),
        }
    }

    pub(super) fn ack_only(fields: Value) -> Self {
        Self {
            emit: None,
            ack: fields,
        }
    }
}

/// What a handler gets.
pub struct Ctx {
    pub state: AppState,
    pub user: SocketUser,
    pub socket: SocketRef,
}

/// Requests of one socket waiting for its worker; past this many, new ones are refused.
const QUEUE_DEPTH: usize = 256;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Registers the handlers of a socket. Its requests are handled one at a time, in the order they
/// arrived, by one worker per socket: a client that sends A then B sees A stored before B, and one
/// socket cannot occupy more than one request's worth of the server at a time.
///
/// `first` runs before any request (the on-connect events), so a request sent the moment the
/// socket connects is answered after them; when it answers `false`, no request is handled at all.
///
/// One handler per socket routes every event by name (rather than one registered closure per
/// event, each holding its own copy of the context), and the worker is a task only while there is
/// work: an idle socket costs what it holds, once.
pub fn register(
    socket: &SocketRef,
    user: &SocketUser,
    first: impl Future<Output = bool> + Send + 'static,
) {
    let handlers = Arc::new(Handlers {
        // The greeting's worker is running: requests wait for it.
        queue: Serial::working(),
        user: user.clone(),
    });
    // Boxed, so the greeting's state is freed once sent instead of sizing the task for its life.
    let first: Pin<Box<dyn Future<Output = bool> + Send>> = Box::pin(first);
    let worker = handlers.clone();
    tokio::spawn(async move {
        if first.await {
            worker.work().await;
        } else {
            // The session ended during the handshake: nothing this socket sent is acted on.
            worker.queue.close();
        }
    });
    socket.on_fallback(
        move |socket: SocketRef,
              Event(event): Event,
              TryData(data): TryData<Value>,
              State(state): State<AppState>,
              reply: Reply| {
            // No payload at all (`emit("fetch-user-details")`) reads as null; each request
            // parser decides whether that is acceptable.
            let payload = data.unwrap_or(Value::Null);
            handlers.route(state, &socket, &event, payload, reply);
            // The work runs on the socket's worker; socketioxide gets a finished future.
            std::future::ready(())
        },
    );
}

/// A socket's waiting requests, run one at a time in arrival order by a worker that exists only
/// while there is work: the first job queued while none runs asks its caller to start one, and
/// the worker stops when it finds the queue empty.
struct Serial<T> {
    queue: Mutex<Queue<T>>,
}

struct Queue<T> {
    jobs: VecDeque<T>,
    /// A worker is running and will take every job queued before it finds the queue empty.
    working: bool,
    /// The greeting failed: the session is over and nothing more is queued.
    closed: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Full,
    Closed,
}

impl<T> Serial<T> {
    /// A queue whose first worker (the greeting's) is already running.
    fn working() -> Self {
        Self {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                working: true,
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        // No job runs under the lock, so a poisoned lock still holds a consistent queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether one more job may be queued.
    fn admit(&self) -> Result<(), Refusal> {
        let queue = self.lock();
        if queue.closed {
            Err(Refusal::Closed)
        } else if queue.jobs.len() >= QUEUE_DEPTH {
            Err(Refusal::Full)
        } else {
            Ok(())
        }
    }

    /// Queues `job`; `true` when no worker runs, so the caller must start one.
    fn push(&self, job: T) -> bool {
        let mut queue = self.lock();
        if queue.closed {
            return false;
        }
        queue.jobs.push_back(job);
        !std::mem::replace(&mut queue.working, true)
    }

    /// The worker's next job; `None` ends the worker.
    fn next(&self) -> Option<T> {
        let mut queue = self.lock();
        let job = queue.jobs.pop_front();
        if job.is_none() {
            queue.working = false;
            // Give back what a burst grew.
            queue.jobs = VecDeque::new();
        }
        job
    }

    /// Ends the queue: what waits is dropped, nothing more is taken.
    fn close(&self) {
        let mut queue = self.lock();
        queue.closed = true;
        queue.working = false;
        queue.jobs = VecDeque::new();
    }
}

/// What a socket keeps while idle. The state is not among it: socketioxide hands it to every
/// request, and a copy per socket would be a few hundred bytes of every idle socket.
struct Handlers {
    queue: Serial<Job>,
    user: SocketUser,
}

impl Handlers {
    /// Runs queued jobs in order until the queue is empty.
    async fn work(self: Arc<Self>) {
        while let Some(job) = self.queue.next() {
            job.await;
        }
    }

    /// Queues the request for the socket's worker; an event that names no request is ignored.
    fn route(
        self: &Arc<Self>,
        state: AppState,
        socket: &SocketRef,
        event: &str,
        payload: Value,
        reply: Reply,
    ) {
        macro_rules! routes {
            ($($name:literal => $handler:path),* $(,)?) => {
                match event {
                    $($name => self.enqueue(state, socket, $name, $handler, payload, reply),)*
                    _ => tracing::debug!(event, "an event that names no request: ignored"),
                }
            };
        }
        routes! {
            "fetch-user-details" => fetch_user_details,
            "search-user" => search_user,
            "fetch-self-chat" => fetch_self_chat,
            "send-self-message" => send_self_message,
            "check-chat" => chats::check_chat,
            "create-personal-chat" => chats::create_personal_chat,
            "fetch-personal-chat" => chats::fetch_personal_chat,
            "send-personal-message" => chats::send_personal_message,
            "read-personal-message" => chats::read_personal_message,
            "create-group-chat" => chats::create_group_chat,
            "fetch-group-chat" => chats::fetch_group_chat,
            "send-group-message" => chats::send_group_message,
            "read-group-message" => chats::read_group_message,
            "add-member" => chats::add_member,
            "kickout" => chats::kickout,
            "change-admin" => chats::change_admin,
            "leave-grp" => chats::leave_group,
            "delete-grp" => chats::delete_group,
        }
    }

    /// Queues `handler` for `event`, answering it exactly once (ack or `request-failed`); a full
    /// queue is answered `rate_limited` at once.
    fn enqueue<F, Fut>(
        self: &Arc<Self>,
        state: AppState,
        socket: &SocketRef,
        event: &'static str,
        handler: F,
        payload: Value,
        reply: Reply,
    ) where
        F: FnOnce(Ctx, Value) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Answer, Failure>> + Send + 'static,
    {
        match self.queue.admit() {
            Ok(()) => {}
            Err(Refusal::Closed) => {
                tracing::debug!(event, "a request after the session ended: ignored");
                return;
            }
            Err(Refusal::Full) => {
                tracing::debug!(event, "the socket's request queue is full: refused");
                reply.fail(event, &Failure::rate_limited());
                return;
            }
        }
        let Some(taken) = state.requests.take() else {
            tracing::debug!(event, "a request while the gateway is stopping: refused");
            reply.fail(event, &Failure::stopping());
            return;
        };
        let ctx = Ctx {
            state,
            user: self.user.clone(),
            socket: socket.clone(),
        };
        let socket = socket.clone();
        let job: Job = Box::pin(async move {
            // Given back once answered (or if the job is dropped with its socket).
            let _taken = taken;
            let result = tokio::time::timeout(REQUEST_TIMEOUT, handler(ctx, payload))
                .await
                .unwrap_or_else(|_| {
                    tracing::warn!(event, "request timed out");
                    Err(Failure::internal())
                });
            match result {
                Ok(answer) => {
                    if let Some((name, payload)) = &answer.emit {
                        outbound::emit(&socket, name, payload);
                    }
                    reply.ok(answer.ack);
                }
                Err(failure) => reply.fail(event, &failure),
            }
        });
        if self.queue.push(job) {
            tokio::spawn(self.clone().work());
        }
    }
}

pub(super) fn internal(e: impl std::fmt::Display) -> Failure {
    tracing::error!(error = %e, "query failed");
    Failure::internal()
}

/// `user-id`, `personal-chat-list`, `group-chat-list`, in this order.
pub async fn send_on_connect(socket: &SocketRef, state: &AppState, user: &SocketUser) {
    outbound::emit(
        socket,
        "user-id",
        &json!({"userId": user.user_id, "userName": user.name}),
    );
    state.consistency.caught_up_for(&user.user_id).await;
    // A client without its lists is stuck, so a failure to read them (typically the database pool
    // running dry when thousands of clients reconnect at once) is retried with back-off for a
    // while; only then is the client told and let go, so that it reconnects.
    let deadline = tokio::time::Instant::now() + ON_CONNECT_PATIENCE;
    let mut pause = Duration::from_millis(50);
    loop {
        match chat_lists(state, &user.user_id).await {
            Ok((personal, groups)) => {
                outbound::emit(socket, "personal-chat-list", &personal);
                outbound::emit(socket, "group-chat-list", &groups);
                return;
            }
            Err(_) if tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(failure) => {
                socket
                    .emit(
                        "request-failed",
                        &json!({"Event": "connect", "code": failure.code, "message": failure.message}),
                    )
                    .ok();
                socket.clone().disconnect().ok();
                return;
            }
        }
    }
}

/// How long the on-connect lists may take, retries included, before the socket is let go.
const ON_CONNECT_PATIENCE: Duration = Duration::from_secs(30);

async fn chat_lists(state: &AppState, user: &UserId) -> Result<(Value, Value), Failure> {
    let personal = queries::personal_chat_list(&state.reads, user)
        .await
        .map_err(internal)?;
    let groups = queries::group_chat_list(&state.reads, user)
        .await
        .map_err(internal)?;
    let personal: Vec<Value> = personal
        .into_iter()
        .map(|c| {
            json!({
                "_id": c.chat_id,
                "Partner": c.partner_name,
                "PartnerId": c.partner_id,
                "LastChat": c.last_chat.map(timestamp),
                "Unread": c.unread,
            })
        })
        .collect();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|g| json!({"_id": g.chat_id, "Name": g.name, "LastChat": g.last_chat.map(timestamp), "Unread": g.unread}))
        .collect();
    Ok((
        json!({"PersonalChatList": personal}),
        json!({"GroupChatList": groups}),
    ))
}

async fn fetch_user_details(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    requests::nothing(&payload)?;
    let me = &ctx.user.user_id;
    ctx.state.consistency.caught_up_for(me).await;
    let name = queries::user(&ctx.state.reads, me)
        .await
        .map_err(internal)?
        .map(|u| u.name)
        .unwrap_or_else(|| ctx.user.name.clone());
    let emails = ctx
        .state
        .auth
        .email_of(std::slice::from_ref(me))
        .await
        .map_err(internal)?;
    let email = emails.get(me).cloned().unwrap_or_default();
    Ok(Answer::event(
        "user-details",
        json!({"Name": name, "Email": email, "Id": me}),
    ))
}

async fn search_user(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::search(&payload)?;
    let found = if request.name.trim().is_empty() {
        Vec::new()
    } else {
        queries::search_users(
            &ctx.state.reads,
            request.name.trim(),
            &ctx.user.user_id,
            request.purpose.limit(),
        )
        .await
        .map_err(internal)?
    };
    let ids: Vec<UserId> = found.iter().map(|u| u.id.clone()).collect();
    let emails = ctx.state.auth.email_of(&ids).await.map_err(internal)?;
    let users: Vec<Value> = found
        .into_iter()
        .map(|u| {
            let email = emails.get(&u.id).cloned().unwrap_or_default();
            json!({"_id": u.id, "Name": u.name, "Email": email})
        })
        .collect();
    Ok(Answer::event(
        request.purpose.answer_event(),
        json!({"Users": users}),
    ))
}

async fn fetch_self_chat(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::page(&payload)?;
    let me = &ctx.user.user_id;
    ctx.state.consistency.caught_up_for(me).await;
    let chat = ChatId::self_chat_of(me);
    let page = queries::message_page(
        &ctx.state.reads,
        &chat,
        request.before.as_ref(),
        request.limit,
    )
    .await
    .map_err(|e| match e {
        queries::QueryError::UnknownMessage => {
            Failure::not_found("Before is not a message of this chat")
        }
        other => internal(other),
    })?;
    let messages: Vec<Value> = page
        .messages
        .into_iter()
        .map(|m| json!({"_id": m.id, "Content": m.content, "Timestamp": timestamp(m.sent_at)}))
        .collect();
    Ok(Answer::event(
        "self-chat",
        json!({"Messages": messages, "Name": ctx.user.name, "HasMore": page.has_more}),
    ))
}

async fn send_self_message(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::send_self(&payload)?;
    let command = Command::SendSelfMessage {
        content: request.content,
        client_id: request.client_id,
    };
    let accepted = chats::command(&ctx, command).await?;
    Ok(Answer::ack_only(chats::sent_ack(&accepted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_started_only_when_none_runs_and_stops_on_an_empty_queue() {
        let serial = Serial::working();
        // The greeting's worker runs: requests queue behind it.
        assert!(!serial.push(1));
        assert!(!serial.push(2));
        assert_eq!(serial.next(), Some(1));
        assert_eq!(serial.next(), Some(2));
        assert_eq!(serial.next(), None);
        // That worker has stopped: the next request starts one, and only one.
        assert!(serial.push(3));
        assert!(!serial.push(4));
        assert_eq!(serial.next(), Some(3));
        assert_eq!(serial.next(), Some(4));
        assert_eq!(serial.next(), None);
        assert!(serial.push(5));
    }

    #[test]
    fn past_the_depth_requests_are_refused_until_one_is_taken() {
        let serial = Serial::working();
        for i in 0..QUEUE_DEPTH {
            assert_eq!(serial.admit(), Ok(()));
            serial.push(i);
        }
        assert_eq!(serial.admit(), Err(Refusal::Full));
        assert_eq!(serial.next(), Some(0));
        assert_eq!(serial.admit(), Ok(()));
    }

    #[test]
    fn a_closed_queue_drops_what_waits_and_takes_nothing() {
        let serial = Serial::working();
        serial.push(1);
        serial.close();
        assert_eq!(serial.admit(), Err(Refusal::Closed));
        assert!(!serial.push(2));
        assert_eq!(serial.next(), None);
    }
}
