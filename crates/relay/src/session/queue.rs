//! The client's outgoing queue for the relay's own answers (refusals, notices, the scrubbed
//! `session.created`), in order, bounded in bytes with backpressure.
//!
//! Upstream frames do not wait here: the downlink writes each to the client socket before reading
//! the next (see `pump.rs`), and it writes what this queue holds between them, first. A producer
//! waits for room ([`Queue::push`]): a client that floods the relay with refused frames without
//! reading the answers stops being read once its answers fill the queue, so no client makes the
//! relay hold more than the limit (plus one message) for it. Room is a semaphore of bytes (fair:
//! producers are served in order); the downlink gives a message's bytes back once the client socket
//! has taken it. The relay's timed notices ([`Queue::push_now`]) skip the wait: at most one per
//! timer, they are bounded by time.

use axum::extract::ws;
use tokio::sync::{Semaphore, mpsc};

/// The producer side, shared by the uplink, the downlink and the session's timers.
pub struct Queue {
    tx: mpsc::UnboundedSender<Queued>,
    room: Semaphore,
    limit: u32,
}

/// The downlink's side: what it writes between upstream frames.
pub struct QueueRx {
    rx: mpsc::UnboundedReceiver<Queued>,
}

/// A queued message and the bytes of room it holds.
pub struct Queued {
    pub message: ws::Message,
    room: u32,
}

/// The downlink is gone (the session is ending).
#[derive(Debug)]
pub struct Closed;

/// A message's size for the queue: its payload.
pub fn message_len(m: &ws::Message) -> usize {
    match m {
        ws::Message::Text(t) => t.len(),
        ws::Message::Binary(b) => b.len(),
        _ => 0,
    }
}

impl Queue {
    /// A queue holding at most `limit_bytes` (at least one byte; a larger message waits for an
    /// empty queue and then goes alone).
    pub fn new(limit_bytes: usize) -> (Queue, QueueRx) {
        let limit = u32::try_from(limit_bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Queue {
            tx,
            room: Semaphore::new(limit as usize),
            limit,
        };
        (queue, QueueRx { rx })
    }

    /// Queue `m` once there is room for it.
    pub async fn push(&self, message: ws::Message) -> Result<(), Closed> {
        let room = u32::try_from(message_len(&message)).unwrap_or(u32::MAX).min(self.limit);
        self.room.acquire_many(room).await.map_err(|_| Closed)?.forget();
        self.tx.send(Queued { message, room }).map_err(|_| Closed)
    }

    /// Queue one of the relay's timed notices now, without waiting for room.
    pub fn push_now(&self, message: ws::Message) {
        let _ = self.tx.send(Queued { message, room: 0 });
    }

    /// The client socket took a queued message: its room is free again.
    pub fn taken(&self, queued_room: u32) {
        self.room.add_permits(queued_room as usize);
    }

    /// Bytes queued now.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        self.limit as usize - self.room.available_permits()
    }
}

impl QueueRx {
    /// The next message, waiting for one.
    pub async fn recv(&mut self) -> Option<Queued> {
        self.rx.recv().await
    }

    /// The next message, if one is queued.
    pub fn try_recv(&mut self) -> Option<Queued> {
        self.rx.try_recv().ok()
    }
}

impl Queued {
    /// The room this message holds, to give back with [`Queue::taken`].
    pub fn room(&self) -> u32 {
        self.room
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn text(n: usize) -> ws::Message {
        ws::Message::Text("x".repeat(n).into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_makes_producers_wait_until_the_writer_takes() {
        let (queue, mut rx) = Queue::new(100);
        queue.push(text(60)).await.unwrap();
        queue.push(text(40)).await.unwrap();
        assert_eq!(queue.queued_bytes(), 100);
        // Full: the next push waits...
        let blocked = tokio::time::timeout(Duration::from_secs(60), queue.push(text(10))).await;
        assert!(blocked.is_err(), "a push into a full queue waits");
        // ...until the writer takes a message.
        let first = rx.recv().await.unwrap();
        queue.taken(first.room());
        queue.push(text(10)).await.unwrap();
        assert_eq!(queue.queued_bytes(), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_over_the_limit_goes_alone_and_notices_never_wait() {
        let (queue, mut rx) = Queue::new(100);
        queue.push(text(1000)).await.unwrap();
        assert_eq!(queue.queued_bytes(), 100);
        queue.push_now(text(50));
        let order: Vec<usize> = [rx.try_recv().unwrap(), rx.try_recv().unwrap()]
            .iter()
            .map(|q| message_len(&q.message))
            .collect();
        assert_eq!(order, [1000, 50]);
        queue.taken(100);
        assert_eq!(queue.queued_bytes(), 0);
    }
}
