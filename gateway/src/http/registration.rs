//! A verified account becomes a chat user: the commands the auth routes send, which are never
//! expected to be refused.

use events_schema::{Command, CommandOutcome, RefusalCode, UserId, UserName};
use uuid::Uuid;

use super::error::ApiError;
use crate::auth::SignedIn;
use crate::state::AppState;

/// Sends a command of an auth route; a refusal is a server error.
pub async fn dispatch(
    state: &AppState,
    actor: Option<UserId>,
    command: Command,
) -> Result<(), ApiError> {
    let name = command.name();
    match state.dispatch(Uuid::now_v7(), actor, command).await {
        CommandOutcome::Accepted(_) => Ok(()),
        CommandOutcome::Refused { code, message } => Err(ApiError::Internal(format!(
            "{name} refused with {}: {message}",
            code.as_str()
        ))),
    }
}

/// Makes sure a verified account is a chat user with a self chat (idempotent), and that the
/// user's next queries see it; first records its registration if no sign-up managed to.
pub async fn ensure_chat_user(state: &AppState, signed_in: &SignedIn) -> Result<(), ApiError> {
    if !signed_in.registered {
        record_registration(state, &signed_in.user_id, &signed_in.name).await?;
    }
    let user_id = &signed_in.user_id;
    let command = Command::VerifyUser {
        user_id: user_id.clone(),
    };
    dispatch(state, Some(user_id.clone()), command).await
}

/// Appends the account's `UserRegistered`, idempotently, and notes in the account that it is in
/// the log. The user id is the account's own, made by this server, so a conflict means an
/// earlier attempt did append it and only its answer was lost: then the name is brought up to
/// date instead (a no-op when it is; refused, and left as it is, once the user is verified).
pub async fn record_registration(
    state: &AppState,
    user_id: &UserId,
    name: &UserName,
) -> Result<(), ApiError> {
    let actor = Some(user_id.clone());
    let register = Command::RegisterUser {
        user_id: user_id.clone(),
        name: name.clone(),
    };
    match state
        .dispatch(Uuid::now_v7(), actor.clone(), register)
        .await
    {
        CommandOutcome::Accepted(_) => {}
        CommandOutcome::Refused {
            code: RefusalCode::Conflict,
            ..
        } => {
            tracing::debug!(%user_id, "registration already in the log");
            let rename = Command::RenameUser {
                user_id: user_id.clone(),
                name: name.clone(),
            };
            match state.dispatch(Uuid::now_v7(), actor, rename).await {
                CommandOutcome::Accepted(_)
                | CommandOutcome::Refused {
                    code: RefusalCode::Conflict,
                    ..
                } => {}
                CommandOutcome::Refused { code, message } => {
                    return Err(ApiError::Internal(format!(
                        "rename_user refused with {}: {message}",
                        code.as_str()
                    )))
                }
            }
        }
        CommandOutcome::Refused { code, message } => {
            return Err(ApiError::Internal(format!(
                "register_user refused with {}: {message}",
                code.as_str()
            )))
        }
    }
    if let Err(e) = state.auth.registration_recorded(user_id).await {
        // The registration is in the log; the next attempt finds it there (a conflict).
        tracing::warn!(%user_id, error = %e, "cannot note that the registration is recorded");
    }
    Ok(())
}
