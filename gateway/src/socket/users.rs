//! The users: one's own details and name, and the search for others.

use events_schema::{Command, UserId, UserName};
use projection_service::queries;
use serde_json::{Map, Value};

use super::handler::{command, internal, spend, Answer, Ctx};
use super::reply::Failure;
use super::requests;
use crate::limits::Budget;
use crate::wire::{FoundUser, FoundUsers, UserDetails};

/// `fetch-user-details {}` → `user-details {Name, Email, Id, Sessions}`.
pub async fn fetch_user_details(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
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
    let sessions = ctx.state.auth.session_count(me).await.map_err(internal)?;
    let details = UserDetails {
        email,
        id: me,
        name,
        sessions,
    };
    Answer::event("user-details", &details)
}

/// `rename {Name}` → ack `{success:1, Name}` (the name as kept: trimmed); the user's contacts
/// see `presence-changed {UserId, Name}` once it is stored.
pub async fn rename(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let name = match payload.get("Name") {
        Some(Value::String(raw)) => UserName::parse(raw).map_err(|_| {
            Failure::bad_request("Name must be 1 to 64 characters, no control character")
        })?,
        Some(_) => return Err(Failure::bad_request("Name must be a string")),
        None if payload.is_object() => return Err(Failure::bad_request("Name is required")),
        None => return Err(Failure::bad_request("the payload must be an object")),
    };
    command(&ctx, Command::ChangeName { name: name.clone() }).await?;
    // The account's copy is what login and the next handshake answer; the log is the truth, and
    // a failure here is healed by the next rename.
    if let Err(e) = ctx.state.auth.set_name(&ctx.user.user_id, &name).await {
        tracing::warn!(user = %ctx.user.user_id, error = %e, "the account's name was not updated");
    }
    let mut ack = Map::new();
    ack.insert("Name".to_owned(), Value::String(name.as_str().to_owned()));
    Ok(Answer { emit: None, ack })
}

/// `search-user {Name, Type}` → `searched-user` or `added-user-match`.
pub async fn search_user(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let request = requests::search(&payload)?;
    spend(&ctx, Budget::Search)?;
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
    let users = found
        .into_iter()
        .map(|u| FoundUser {
            email: emails.get(&u.id).cloned().unwrap_or_default(),
            name: u.name,
            id: u.id,
        })
        .collect();
    Answer::event(request.purpose.answer_event(), &FoundUsers { users })
}
