//! When users were last seen, in the accounts database (`presence_last_seen`): written once a
//! user's last socket left and the grace ended, read for `presence` and `presence-changed`.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use events_schema::UserId;
use infra::db::Database;

/// Records that `user` was last seen at `at` (never moving it back: two gateways may both record
/// the end of a gateway that went silent).
pub async fn record(db: &Database, user: &UserId, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO presence_last_seen (user_id, last_seen) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET last_seen = excluded.last_seen \
         WHERE presence_last_seen.last_seen < excluded.last_seen",
    )
    .bind(user.as_str())
    .bind(at.timestamp_millis())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// When each of `users` was last seen, for those ever seen.
pub async fn of(
    db: &Database,
    users: &[UserId],
) -> Result<HashMap<UserId, DateTime<Utc>>, sqlx::Error> {
    let mut seen = HashMap::new();
    // Chunks keep every statement well within both databases' limits on parameters.
    for chunk in users.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT user_id, last_seen FROM presence_last_seen WHERE user_id IN ({})",
            placeholders.join(", ")
        );
        let rows: Vec<(String, i64)> = db
            .read(|| {
                let mut query = sqlx::query_as(&sql);
                for user in chunk {
                    query = query.bind(user.as_str());
                }
                query.fetch_all(&db.pool)
            })
            .await?;
        for (user, at) in rows {
            if let (Ok(user), Some(at)) =
                (UserId::parse(&user), Utc.timestamp_millis_opt(at).single())
            {
                seen.insert(user, at);
            }
        }
    }
    Ok(seen)
}
