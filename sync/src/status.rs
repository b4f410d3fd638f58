//! Per-stream state shared by the shipping loops, the lag gauges and `/health`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct StreamState {
    /// Last time a read found nothing more to ship below the watermark.
    pub caught_up_at: Instant,
    /// The last read found nothing more to ship.
    pub caught_up: bool,
    /// Set while batches fail; cleared by the next success.
    pub error: Option<String>,
    /// Every transaction below this id has finished and its rows of the stream are in
    /// ClickHouse (0 until known).
    pub covered: u64,
}

#[derive(Default)]
pub struct Status {
    streams: Mutex<BTreeMap<&'static str, StreamState>>,
}

impl Status {
    pub fn register(&self, stream: &'static str) {
        self.streams.lock().unwrap().insert(
            stream,
            StreamState {
                caught_up_at: Instant::now(),
                caught_up: false,
                error: None,
                covered: 0,
            },
        );
    }

    pub fn succeeded(&self, stream: &'static str, caught_up: bool) {
        if let Some(s) = self.streams.lock().unwrap().get_mut(stream) {
            s.error = None;
            s.caught_up = caught_up;
            if caught_up {
                s.caught_up_at = Instant::now();
            }
        }
    }

    pub fn failed(&self, stream: &'static str, error: String) {
        if let Some(s) = self.streams.lock().unwrap().get_mut(stream) {
            s.error = Some(error);
        }
    }

    /// Records that every transaction below `xid` is shipped (see [`StreamState::covered`]).
    pub fn cover(&self, stream: &'static str, xid: u64) {
        if let Some(s) = self.streams.lock().unwrap().get_mut(stream) {
            s.covered = s.covered.max(xid);
        }
    }

    pub fn covered(&self, stream: &str) -> u64 {
        self.streams
            .lock()
            .unwrap()
            .get(stream)
            .map_or(0, |s| s.covered)
    }

    pub fn is_caught_up(&self, stream: &str) -> bool {
        self.streams
            .lock()
            .unwrap()
            .get(stream)
            .is_some_and(|s| s.caught_up)
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, StreamState> {
        self.streams.lock().unwrap().clone()
    }
}

/// A Postgres horizon (the next transaction id) read once for a target and kept while the
/// target stays the same. Waiting until the shipped watermark passes a horizon read afresh on
/// every look never ends while orders keep committing: each look reads a later one.
#[derive(Debug)]
pub struct Horizon<K>(Option<(K, u64)>);

impl<K> Default for Horizon<K> {
    fn default() -> Self {
        Horizon(None)
    }
}

impl<K: PartialEq> Horizon<K> {
    /// The horizon kept for `target`, or `now`, kept from here on for it.
    pub fn of(&mut self, target: K, now: u64) -> u64 {
        match &self.0 {
            Some((t, h)) if *t == target => *h,
            _ => {
                self.0 = Some((target, now));
                now
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Horizon;

    #[test]
    fn a_horizon_is_kept_until_the_target_changes() {
        let mut h = Horizon::default();
        assert_eq!(h.of(1, 100), 100);
        assert_eq!(h.of(1, 150), 100);
        assert_eq!(h.of(2, 170), 170);
        assert_eq!(h.of(2, 200), 170);
        assert_eq!(h.of(1, 210), 210);
    }
}
