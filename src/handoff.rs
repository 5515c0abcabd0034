//! Handing batches between threads without making the busy thread wake the idle one.
//!
//! With `std::sync::mpsc`, a thread that blocks on a full or empty channel is woken by the
//! other end's next `recv` or `send`, and that wake-up is a futex system call made by the
//! thread that did not wait. Reading a file, the waiting thread is the fast one (the reader
//! ahead of the analysis, the output thread behind it) and the one paying is the analysis,
//! the thread that sets the run's time. On the 2-core VMs this project is measured on, a
//! wake-up costs the waker about 5 µs: JSON on the 4.4 M-packet benchmark made 6,967 of them
//! on the analysis thread, 2.3% of the run's CPU samples.
//!
//! So the fast thread waits by polling: it tries, and on a full or empty channel sleeps
//! [`PAUSE`] and tries again. No thread is then blocked in the channel, and the analysis's
//! `send` and `recv` stay in user space. `PAUSE` is short next to the time the queued batches
//! last (a batch is a few hundred microseconds of analysis, and 4 or more are queued), so the
//! waiting side is back before the other runs dry. After [`POLLS`] tries (5 ms) it blocks as
//! before: a live capture on a quiet link waits for minutes, and should not poll meanwhile.

use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::Duration;

/// How long a thread that found the channel full or empty sleeps before it tries again.
pub const PAUSE: Duration = Duration::from_micros(100);

/// Tries before a waiting thread blocks in the channel instead.
pub const POLLS: u32 = 50;

/// Sends `value`, polling while the channel is full; gives it back if the receiver is gone.
pub fn send<T>(tx: &SyncSender<T>, mut value: T) -> Result<(), T> {
    for _ in 0..POLLS {
        match tx.try_send(value) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(v)) => {
                value = v;
                std::thread::sleep(PAUSE);
            }
            Err(TrySendError::Disconnected(v)) => return Err(v),
        }
    }
    tx.send(value).map_err(|e| e.0)
}

/// The next value, polling while the channel is empty; None once the sender is gone and the
/// channel is empty.
pub fn recv<T>(rx: &Receiver<T>) -> Option<T> {
    for _ in 0..POLLS {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(TryRecvError::Empty) => std::thread::sleep(PAUSE),
            Err(TryRecvError::Disconnected) => return None,
        }
    }
    rx.recv().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    /// A slow receiver and a fast sender (the sender polls on a full channel), then a fast
    /// receiver and a slow sender (the receiver polls on an empty one, and once waits longer
    /// than its polls, and blocks): every value arrives, in order, and each side learns when
    /// the other has gone.
    #[test]
    fn values_arrive_in_order_whichever_side_waits() {
        let (tx, rx) = sync_channel(2);
        let slow_receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(v) = recv(&rx) {
                if v < 50 {
                    std::thread::sleep(Duration::from_micros(300));
                }
                got.push(v);
            }
            got
        });
        for v in 0..100u32 {
            if v >= 50 {
                std::thread::sleep(Duration::from_micros(300));
            }
            if v == 75 {
                std::thread::sleep(PAUSE * POLLS * 2);
            }
            assert_eq!(send(&tx, v), Ok(()));
        }
        drop(tx);
        assert_eq!(slow_receiver.join().unwrap(), (0..100).collect::<Vec<_>>());

        let (tx, rx) = sync_channel::<u32>(1);
        drop(rx);
        assert_eq!(send(&tx, 7), Err(7));
    }
}
