//! PostgreSQL announces each stored batch (the trigger of migration 1004 calls `pg_notify` with the
//! highest position written). One listener per store keeps the highest position announced, so the
//! store's followers read another process's appends as soon as they are committed, and an idle
//! follower does not poll. The listener reconnects when its connection is lost, and then reads the
//! log's head, since announcements made meanwhile are gone.

use std::time::Duration;

use events_schema::Position;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::backoff::Backoff;

/// The channel of migration 1004's trigger.
const CHANNEL: &str = "expresschat_events";

/// Starts listening on the database at `url`; the receiver holds the highest position announced
/// (0 until one is). The listener ends when every receiver is gone.
pub(super) fn listen(url: String) -> watch::Receiver<Position> {
    let (announced, receiver) = watch::channel(0);
    tokio::spawn(async move {
        let mut pauses = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            tokio::select! {
                () = announced.closed() => return,
                ended = follow(&url, &announced, &mut pauses) => {
                    if let Err(e) = ended {
                        tracing::warn!(error = %e, "event store: not listening for other processes' appends; trying again");
                    }
                }
            }
            tokio::select! {
                () = announced.closed() => return,
                () = tokio::time::sleep(pauses.next()) => {}
            }
        }
    });
    receiver
}

/// One listening connection, until it is lost (`Ok`) or fails.
async fn follow(
    url: &str,
    announced: &watch::Sender<Position>,
    pauses: &mut Backoff,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    pauses.reset();
    // Whatever was committed before the LISTEN took effect was announced to nobody.
    let head: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(position), 0) AS BIGINT) FROM events")
            .fetch_one(&mut listener)
            .await?;
    raise(announced, head as Position);
    // `None`: the connection was lost (announcements may be missed until the next connection).
    while let Some(notification) = listener.try_recv().await? {
        match notification.payload().parse::<Position>() {
            Ok(position) => raise(announced, position),
            Err(_) => tracing::debug!(
                payload = notification.payload(),
                "event store: an announcement without a position"
            ),
        }
    }
    Ok(())
}

/// Moves the announced position up to `position` (never down), waking followers only then.
fn raise(announced: &watch::Sender<Position>, position: Position) {
    announced.send_if_modified(|highest| {
        let higher = position > *highest;
        if higher {
            *highest = position;
        }
        higher
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_store::{open_event_store, ExpectedVersion};
    use crate::testing::{test_event, TempPostgres};

    /// Another process's append (here: a second store on the same database) is announced with
    /// its position.
    #[tokio::test]
    async fn another_writers_append_is_announced_with_its_position() {
        let db = TempPostgres::create("es_announce").await;
        let other = open_event_store(&db.url()).await.unwrap();
        other
            .append("s", ExpectedVersion::NoStream, vec![test_event("1")])
            .await
            .unwrap();
        let mut announced = listen(db.url());
        // The head, read once the listener listens.
        let reached = |announced: &mut watch::Receiver<Position>, position: Position| {
            let mut announced = announced.clone();
            tokio::time::timeout(Duration::from_secs(30), async move {
                announced.wait_for(|p| *p >= position).await.map(|p| *p)
            })
        };
        assert_eq!(reached(&mut announced, 1).await.unwrap().unwrap(), 1);
        // Only a notification can tell of this one.
        let written = other
            .append("s", ExpectedVersion::Exact(0), vec![test_event("2")])
            .await
            .unwrap();
        let seen = reached(&mut announced, written.position)
            .await
            .expect("the append is announced")
            .unwrap();
        assert_eq!(seen, written.position);
    }
}
