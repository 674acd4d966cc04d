//! The read models' checkpoint: the position of the last event applied to them, kept in
//! `projection_checkpoints` and moved in the same transaction as the rows it covers. The one place
//! that reads and writes that table.

use events_schema::Position;
use sqlx::{Any, Executor};

/// The checkpoint row of the read models' projector (also the name of its NATS consumer and of
/// the projection `replay` rebuilds).
pub const NAME: &str = infra::subjects::READ_MODELS;

/// The checkpoint as committed (0: none).
pub async fn read<'e, E>(executor: E) -> Result<Position, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(NAME)
            .fetch_optional(executor)
            .await?;
    Ok(row.map(|(p,)| p.max(0) as Position).unwrap_or(0))
}

/// Moves the checkpoint to `position`, inside the caller's transaction.
pub async fn write<'e, E>(executor: E, position: Position) -> Result<(), sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
    )
    .bind(NAME)
    .bind(position as i64)
    .execute(executor)
    .await?;
    Ok(())
}
