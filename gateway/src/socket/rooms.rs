//! Who a socket belongs to, and the rooms that name its audiences.

use events_schema::UserId;

use crate::auth::SessionId;

/// Who a connected socket belongs to.
#[derive(Debug, Clone)]
pub struct SocketUser {
    pub user_id: UserId,
    pub name: String,
    pub session_id: SessionId,
}

/// The room of every socket of a user.
pub fn user_room(user: &UserId) -> String {
    format!("user:{user}")
}

/// The room of every socket opened with one session (for logout).
pub fn session_room(session: &SessionId) -> String {
    format!("session:{session}")
}
