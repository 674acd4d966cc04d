//! All-in-one, the projector is the gateway's own: an event it parks leaves `/ready` at 200 and
//! says so under `degraded`.

mod support;

use std::time::Duration;

use events_schema::{EventMetadata, NewEvent};
use infra::event_store::{open_event_store, ExpectedVersion};
use support::spawn;
use uuid::Uuid;

#[tokio::test]
async fn a_parked_event_leaves_the_all_in_one_server_ready_but_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path(), &[]).await;
    let (status, body, _) = app.get("/ready").await;
    assert_eq!(status, 200);
    assert!(body.get("degraded").is_none(), "{body}");

    // A stored event that no longer decodes (say, written by a buggy release).
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let store = open_event_store(&url).await.unwrap();
    let junk = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "MessageSent".into(),
        schema_version: 2,
        occurred_at: events_schema::envelope::now_millis(),
        metadata: EventMetadata {
            actor: None,
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            trace_parent: None,
        },
        payload: r#"{"chatId":5}"#.into(),
    };
    store
        .append("chat-junk", ExpectedVersion::Any, vec![junk])
        .await
        .unwrap();
    // The projector reads on from its checkpoint when the next command is stored.
    app.verified_user("Ada", "ada@example.com", "correct horse")
        .await;

    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, body, _) = app.get("/ready").await;
        assert_eq!(status, 200, "parked events do not make the server unready");
        if body.get("degraded").is_some() {
            let note = body["degraded"][0].as_str().unwrap_or_default().to_owned();
            assert!(note.contains("1 event parked"), "{note}");
            app.stop().await;
            return;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/ready never said degraded: {last}");
}
