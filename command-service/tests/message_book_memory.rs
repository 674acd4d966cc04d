//! What a chat's per-message facts cost in memory: the heap a `MessageBook` of 100,000 messages
//! holds, counted by the allocator itself. Run with `--nocapture` to see the figure.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use chrono::{DateTime, Utc};
use command_service::domain::messages::MessageBook;
use events_schema::{Emoji, MessageId, UserId};

/// The system allocator, counting the bytes held.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MESSAGES: usize = 100_000;

#[test]
fn a_hundred_thousand_messages_hold_under_ten_megabytes() {
    let people: Vec<UserId> = (0..50)
        .map(|i| UserId::parse(&format!("u{i}")).unwrap())
        .collect();
    let ids: Vec<MessageId> = (0..MESSAGES).map(|_| MessageId::generate()).collect();
    let thumbs = Emoji::parse("👍").unwrap();
    let at =
        |i: usize| DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000 + i as i64).unwrap();

    let before = HELD.load(Ordering::Relaxed);
    let mut book = MessageBook::default();
    for (i, id) in ids.iter().enumerate() {
        book.sent(id, i as u64, &people[i % people.len()], at(i));
        // One message in a hundred gets a reaction.
        if i % 100 == 0 {
            book.reaction_added(id, &people[(i + 1) % people.len()], &thumbs);
        }
    }
    let held = HELD.load(Ordering::Relaxed) - before;
    let per_message = held as f64 / MESSAGES as f64;
    println!(
        "MessageBook: {MESSAGES} messages hold {held} bytes, {per_message:.1} bytes a message"
    );
    assert!(book.get(&ids[0]).is_some_and(|m| m.has_emoji(&thumbs)));
    assert!(held < 10_000_000, "{held} bytes");
}
