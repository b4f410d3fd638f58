//! How the daily cycle yields to partners (docs/decisions/0037-cycle-pacing.md). After each
//! batch the cycle pauses for a share of the batch's own time. The share doubles (from
//! [`FIRST_PCT`]) while the API's p99 is above its target and halves once it is not, between 0
//! and a ceiling: the cycle never runs slower than `1 + ceiling/100` times its full speed, and
//! returns to full speed a few batches after partners stop waiting.

use std::time::Duration;

/// The first pause once partners wait: a quarter of the batch's time.
pub const FIRST_PCT: u32 = 25;

/// What the cycle aims for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// The partner API's p99 the cycle keeps under; zero never pauses.
    pub target: Duration,
    /// The longest pause, in percent of the batch's time.
    pub max_pct: u32,
}

impl Pace {
    pub const OFF: Pace = Pace {
        target: Duration::ZERO,
        max_pct: 0,
    };

    /// True when the cycle never pauses.
    pub fn is_off(&self) -> bool {
        self.target.is_zero() || self.max_pct == 0
    }

    /// The pause share after a batch, from the share before it and the API's p99 now (`None`
    /// when no instance answered partners lately).
    pub fn next_pct(&self, pct: u32, p99: Option<Duration>) -> u32 {
        let waiting = !self.is_off() && p99.is_some_and(|p| p > self.target);
        let next = if waiting {
            pct.saturating_mul(2).max(FIRST_PCT)
        } else {
            pct / 2
        };
        next.min(self.max_pct)
    }
}

/// The pause after a batch that took `batch` at share `pct`.
pub fn pause(batch: Duration, pct: u32) -> Duration {
    batch * pct / 100
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pace(target_ms: u64, max_pct: u32) -> Pace {
        Pace {
            target: Duration::from_millis(target_ms),
            max_pct,
        }
    }

    proptest! {
        #[test]
        fn never_above_the_ceiling(
            target in 0u64..1000, max in 0u32..1000, pct in any::<u32>(),
            p99 in proptest::option::of(0u64..10_000),
        ) {
            let p = pace(target, max);
            prop_assert!(p.next_pct(pct, p99.map(Duration::from_millis)) <= max);
        }

        #[test]
        fn rises_to_the_ceiling_while_partners_wait(target in 1u64..1000, max in 1u32..1000, over in 1u64..1000) {
            let p = pace(target, max);
            let slow = Some(Duration::from_millis(target + over));
            let mut pct = 0;
            for _ in 0..12 {
                let next = p.next_pct(pct, slow);
                prop_assert!(next >= pct && next > 0);
                pct = next;
            }
            prop_assert_eq!(pct, max);
        }

        #[test]
        fn back_to_full_speed_once_they_do_not(
            target in 0u64..1000, max in 0u32..1000, start in 0u32..1000,
            p99 in proptest::option::of(0u64..1000),
        ) {
            let p = pace(target, max);
            let fast = p99.map(|ms| Duration::from_millis(ms.min(target)));
            let mut pct = start.min(max);
            for _ in 0..11 {
                let next = p.next_pct(pct, fast);
                prop_assert!(next <= pct);
                pct = next;
            }
            prop_assert_eq!(pct, 0);
        }

        #[test]
        fn off_never_pauses(pct in any::<u32>(), p99 in proptest::option::of(any::<u64>())) {
            prop_assert_eq!(Pace::OFF.next_pct(pct, p99.map(Duration::from_micros)), 0);
        }

        #[test]
        fn pause_is_the_share_of_the_batch(ms in 0u64..100_000, pct in 0u32..1000) {
            let d = pause(Duration::from_millis(ms), pct);
            prop_assert_eq!(d.as_micros(), u128::from(ms) * 1000 * u128::from(pct) / 100);
        }
    }
}
