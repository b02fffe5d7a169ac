//! Back-off schedules with jitter, and the small deterministic random source behind the jitter.
//!
//! Jitter spreads reconnects and retries so that many gateways (or many queued messages) do not
//! hit a recovering server at the same instant. The random source is seeded by the shell, so the
//! core stays deterministic under test.

use std::time::Duration;

/// SplitMix64: tiny, fast, and good enough for jitter (not for secrets).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly random duration in `[0, max]` (millisecond resolution).
    pub fn up_to(&mut self, max: Duration) -> Duration {
        let ms = max.as_millis() as u64;
        Duration::from_millis(if ms == 0 { 0 } else { self.next_u64() % (ms + 1) })
    }
}

/// Exponential back-off: `base · 2^attempt`, capped, with "equal jitter" (half fixed, half
/// random), so the delay is always at least half the nominal one and never above the cap.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, rng: &mut Rng) -> Duration {
    let nominal = base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(cap);
    nominal / 2 + rng.up_to(nominal / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps_with_bounded_jitter() {
        let mut rng = Rng::new(7);
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        for attempt in 0..40 {
            let nominal = Duration::from_secs((1u64 << attempt.min(20)).min(60));
            for _ in 0..50 {
                let d = backoff(attempt, base, cap, &mut rng);
                assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_varies_and_is_reproducible() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let distinct: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| backoff(5, Duration::from_secs(1), Duration::from_secs(60), &mut a)).collect();
        assert!(distinct.len() > 10);
    }
}
