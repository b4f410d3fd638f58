//! The clock business logic reads. Production uses the system clock; a simulated clock exists
//! only when configuration enables it explicitly. Once set, a simulated clock runs with real
//! time from the instant it was set (an offset from the system clock), so a stack in simulated
//! time keeps accepting signed requests; frozen, it stands still, for scenarios that need an
//! exact instant.

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    simulated: Option<Arc<RwLock<Simulated>>>,
}

#[derive(Clone, Copy, Debug)]
enum Simulated {
    /// Simulated time = system time + offset.
    Running(TimeDelta),
    Frozen(DateTime<Utc>),
}

#[derive(Debug, thiserror::Error)]
#[error("the simulated clock is not enabled")]
pub struct NotSimulated;

impl Clock {
    pub fn system() -> Clock {
        Clock { simulated: None }
    }

    /// A simulated clock running from `start`.
    pub fn simulated(start: DateTime<Utc>) -> Clock {
        Clock::with(Simulated::Running(start - Utc::now()))
    }

    /// A simulated clock standing still at `at`.
    pub fn frozen(at: DateTime<Utc>) -> Clock {
        Clock::with(Simulated::Frozen(at))
    }

    fn with(s: Simulated) -> Clock {
        Clock {
            simulated: Some(Arc::new(RwLock::new(s))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.simulated {
            None => Utc::now(),
            Some(s) => match *s.read().expect("clock lock") {
                Simulated::Running(offset) => Utc::now() + offset,
                Simulated::Frozen(t) => t,
            },
        }
    }

    pub fn is_simulated(&self) -> bool {
        self.simulated.is_some()
    }

    /// True when the simulated clock stands still.
    pub fn is_frozen(&self) -> bool {
        self.simulated
            .as_ref()
            .is_some_and(|s| matches!(*s.read().expect("clock lock"), Simulated::Frozen(_)))
    }

    /// Sets the simulated clock to `now`; it runs on from there.
    pub fn set(&self, now: DateTime<Utc>) -> Result<(), NotSimulated> {
        self.put(Simulated::Running(now - Utc::now()))
    }

    /// Sets the simulated clock to `at` and stops it there.
    pub fn freeze(&self, at: DateTime<Utc>) -> Result<(), NotSimulated> {
        self.put(Simulated::Frozen(at))
    }

    fn put(&self, s: Simulated) -> Result<(), NotSimulated> {
        let cell = self.simulated.as_ref().ok_or(NotSimulated)?;
        *cell.write().expect("clock lock") = s;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_runs_on_and_freeze_stands_still() {
        let t = DateTime::parse_from_rfc3339("2026-11-26T14:59:59+08:00")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::simulated(Utc::now());
        clock.set(t).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let later = clock.now();
        assert!(later > t && later - t < TimeDelta::seconds(60), "{later}");
        assert!(!clock.is_frozen());
        clock.freeze(t).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(clock.now(), t);
        assert!(clock.is_frozen());
        assert!(Clock::system().set(t).is_err());
        assert!(Clock::system().freeze(t).is_err());
    }
}
