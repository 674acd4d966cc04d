//! Typing and presence requests (docs/api.md, "Typing" and "Presence"): `typing` tells the
//! chat's other members, never the store; `set-presence` is the user's choice, stored as an event,
//! and their contacts are told once it is applied (`crate::delivery`).

use events_schema::Command;
use projection_service::queries::Kind;
use serde_json::{Map, Value};

use super::chat_view;
use super::handler::{command, Answer, Ctx};
use super::reply::Failure;
use super::requests;

/// `typing {ChatId, Typing}`: acknowledged `{success:1}` whether told or dropped for the rate.
pub async fn typing(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let (chat, typing) = requests::typing(&payload)?;
    let presence = &ctx.state.presence;
    if !presence.admit_typing(ctx.socket.id, &chat) {
        tracing::debug!(user = %ctx.user.user_id, %chat, "typing beyond the rate: dropped");
        return Ok(acknowledged());
    }
    let (_, members) = chat_view::member_of(&ctx, &chat, |kind| {
        matches!(kind, Kind::Personal | Kind::Group)
    })
    .await?;
    let audience = members
        .into_iter()
        .map(|m| m.id)
        .filter(|id| *id != ctx.user.user_id)
        .collect();
    presence.typing(&ctx.user.user_id, &chat, typing, audience);
    Ok(acknowledged())
}

/// `set-presence {Visible}`.
pub async fn set_presence(ctx: Ctx, payload: Value) -> Result<Answer, Failure> {
    let visible = requests::set_presence(&payload)?;
    command(&ctx, Command::SetPresenceVisibility { visible }).await?;
    Ok(acknowledged())
}

/// `{success: 1}` and nothing else.
fn acknowledged() -> Answer {
    Answer {
        emit: None,
        ack: Map::new(),
    }
}
