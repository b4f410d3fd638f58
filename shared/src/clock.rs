//! The clock business logic reads. Production uses the system clock; a simulated clock, which
//! stands still until ops set it, exists only when configuration enables it explicitly.

use chrono::{DateTime, Utc};
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    simulated: Option<Arc<RwLock<DateTime<Utc>>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the simulated clock is not enabled")]
pub struct NotSimulated;

impl Clock {
    pub fn system() -> Clock {
        Clock { simulated: None }
    }

    pub fn simulated(start: DateTime<Utc>) -> Clock {
        Clock {
            simulated: Some(Arc::new(RwLock::new(start))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.simulated {
            Some(t) => *t.read().expect("clock lock"),
            None => Utc::now(),
        }
    }

    pub fn is_simulated(&self) -> bool {
        self.simulated.is_some()
    }

    pub fn set(&self, now: DateTime<Utc>) -> Result<(), NotSimulated> {
        let t = self.simulated.as_ref().ok_or(NotSimulated)?;
        *t.write().expect("clock lock") = now;
        Ok(())
    }
}
