//! Settling a write whose connection went away mid-commit (a database restart): whether it
//! committed is unknown, so a new connection is asked which appends of the batch are stored.
//! Those are answered; the others are written again by the writer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use events_schema::Position;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Row};
use tokio::sync::watch;
use tokio::time::Instant;

use super::append::AppendRequest;
use super::{connect_writer, Committed};
use crate::backoff::Backoff;
use crate::db::{connection_lost, DbKind};
use crate::event_store::AppendResult;

/// Event ids looked up per statement while settling.
const SETTLE_CHUNK: usize = 500;

/// A new writer connection, tried again with growing pauses until `deadline`.
async fn reconnect_until(
    options: &AnyConnectOptions,
    kind: DbKind,
    deadline: Instant,
) -> Option<AnyConnection> {
    let mut pauses = Backoff::new(Duration::from_millis(25), Duration::from_millis(400));
    loop {
        match tokio::time::timeout_at(deadline, connect_writer(options, kind)).await {
            Ok(Ok(conn)) => return Some(conn),
            Ok(Err(e)) => tracing::debug!(error = %e, "event store writer cannot reconnect yet"),
            Err(_) => {}
        }
        let pause = pauses.next();
        if Instant::now() + pause >= deadline {
            tracing::error!("event store writer could not reconnect in time");
            return None;
        }
        tokio::time::sleep(pause).await;
    }
}

/// [`settle`] on a new connection, which replaces `conn`; tried again (a new connection, the same
/// question) if that one goes away too, until `deadline`. `None` when it could not be asked in time.
pub(super) async fn settle_on_new_connection(
    conn: &mut AnyConnection,
    options: &AnyConnectOptions,
    kind: DbKind,
    batch: &[AppendRequest],
    deadline: Instant,
) -> Option<Vec<Option<AppendResult>>> {
    loop {
        *conn = reconnect_until(options, kind, deadline).await?;
        match settle(conn, batch).await {
            Ok(settled) => return Some(settled),
            Err(e) if connection_lost(&e) && Instant::now() < deadline => {
                tracing::debug!(error = %e, "settling lost its connection too; asking again");
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot settle the interrupted write");
                return None;
            }
        }
    }
}

/// For each append of a batch whose write lost its connection, its result if it is stored after
/// all: every one of its events is in its stream, at consecutive versions (an append is atomic,
/// so its events are all there or none is). `None` for an append that is not stored.
async fn settle(
    conn: &mut AnyConnection,
    batch: &[AppendRequest],
) -> Result<Vec<Option<AppendResult>>, sqlx::Error> {
    let ids: Vec<String> = batch
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id.to_string()))
        .collect();
    let mut stored: HashMap<String, (String, i64, i64)> = HashMap::new();
    for chunk in ids.chunks(SETTLE_CHUNK) {
        let sql = format!(
            "SELECT event_id, stream, version, position FROM events WHERE event_id IN {}",
            crate::db::value_rows(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            stored.insert(
                row.try_get("event_id")?,
                (
                    row.try_get("stream")?,
                    row.try_get("version")?,
                    row.try_get("position")?,
                ),
            );
        }
    }
    Ok(batch
        .iter()
        .map(|request| {
            let mut last: Option<AppendResult> = None;
            for event in &request.events {
                let (stream, version, position) = stored.get(&event.event_id.to_string())?;
                let follows = last
                    .as_ref()
                    .is_none_or(|previous| *version == previous.version as i64 + 1);
                if *stream != request.stream || !follows {
                    return None;
                }
                last = Some(AppendResult {
                    version: *version as u64,
                    position: *position as Position,
                });
            }
            last
        })
        .collect())
}

/// Answers the appends `settle` found stored and keeps the others in `batch`, to be written again.
pub(super) fn answer_settled(
    batch: &mut Vec<AppendRequest>,
    settled: Vec<Option<AppendResult>>,
    head: &watch::Sender<Committed>,
) {
    let mut highest = None;
    let mut rest = Vec::with_capacity(batch.len());
    for (request, result) in batch.drain(..).zip(settled) {
        match result {
            Some(result) => {
                highest = highest.max(Some(result.position));
                let _ = request.reply.send(Ok(result));
            }
            None => rest.push(request),
        }
    }
    *batch = rest;
    if let Some(highest) = highest {
        // Followers read the settled events back from the database.
        head.send_if_modified(|committed| {
            let newer = highest > committed.head;
            if newer {
                *committed = Committed {
                    head: highest,
                    events: Arc::from([]),
                };
            }
            newer
        });
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::super::append::tests::request;
    use super::*;
    use crate::event_store::{open_event_store, ExpectedVersion};
    use crate::testing::test_event;

    /// After a write lost its connection, an append counts as stored only when all its events are,
    /// in its own stream, in its order; anything else is written again.
    #[tokio::test]
    async fn settling_finds_exactly_the_appends_that_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let store = open_event_store(&url).await.unwrap();
        let (e1, e2, e3) = (test_event("1"), test_event("2"), test_event("3"));
        let stored = store
            .append("a", ExpectedVersion::NoStream, vec![e1.clone(), e2.clone()])
            .await
            .unwrap();
        store
            .append("b", ExpectedVersion::NoStream, vec![e3.clone()])
            .await
            .unwrap();
        let new = test_event("new");
        let batch = [
            request("a", &[&e1, &e2]),
            request("c", &[&new]),
            request("c", &[&e3]),
            request("a", &[&e2, &e1]),
            request("a", &[&e1, &new]),
            request("a", &[&e2]),
        ];
        let mut conn = AnyConnection::connect(&url).await.unwrap();
        let settled = settle(&mut conn, &batch).await.unwrap();
        let e2_alone = AppendResult {
            version: 1,
            position: stored.position,
        };
        assert_eq!(
            settled,
            [Some(stored), None, None, None, None, Some(e2_alone)]
        );
    }
}
