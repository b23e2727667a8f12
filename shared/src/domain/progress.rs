//! Snapshot progress, its ETA, and how long to wait before looking again.

use chrono::{DateTime, Utc};

/// How long the check step may wait between two looks at the snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PollBounds {
    /// The shortest wait, in seconds.
    pub min_seconds: u64,
    /// The longest wait, in seconds.
    pub max_seconds: u64,
}

/// One snapshot as DescribeSnapshots reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSample {
    /// The volume's size, the snapshot's weight in the overall progress.
    pub size_gib: u64,
    /// Progress reported by EC2, 0 to 100.
    pub percent: u8,
    /// Whether EC2 reports the snapshot completed.
    pub completed: bool,
    /// When EC2 started the snapshot.
    pub started_at: Option<DateTime<Utc>>,
}

/// Progress of a snapshot set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Size-weighted mean progress, 0 to 100.
    pub percent: u8,
    /// Seconds left at the rate observed so far, when it can be told.
    pub eta_seconds: Option<u64>,
}

impl Progress {
    /// Progress of `samples` at `now`: the mean of their progress weighted by volume size,
    /// and an ETA from the rate since the earliest start.
    pub fn of(samples: &[SnapshotSample], now: DateTime<Utc>) -> Self {
        if samples.is_empty() {
            return Self {
                percent: 100,
                eta_seconds: Some(0),
            };
        }
        let percent_of = |s: &SnapshotSample| {
            if s.completed {
                100
            } else {
                u64::from(s.percent.min(100))
            }
        };
        let total_size: u64 = samples.iter().map(|s| s.size_gib.max(1)).sum();
        let weighted: u64 = samples
            .iter()
            .map(|s| s.size_gib.max(1) * percent_of(s))
            .sum();
        // Round down so that 100 means every snapshot is done.
        let percent = u8::try_from(weighted / total_size).unwrap_or(100);
        let percent = if percent == 100 && !samples.iter().all(|s| s.completed) {
            99
        } else {
            percent
        };

        let started = samples.iter().filter_map(|s| s.started_at).min();
        let eta_seconds = match (percent, started) {
            (100, _) => Some(0),
            (0, _) | (_, None) => None,
            (p, Some(start)) => {
                let elapsed = u64::try_from((now - start).num_seconds()).unwrap_or(0);
                Some(elapsed * u64::from(100 - p) / u64::from(p))
            }
        };
        Self {
            percent,
            eta_seconds,
        }
    }
}

/// Seconds to wait before the next look: half the remaining time when it is known, else
/// doubling from the minimum with each look, always within the bounds. An hour-long snapshot
/// is then looked at a few dozen times at most, a short one within seconds of its end.
pub fn next_wait(eta_seconds: Option<u64>, checks_so_far: u32, bounds: PollBounds) -> u64 {
    let wanted = match eta_seconds {
        Some(eta) => eta / 2,
        None => bounds
            .min_seconds
            .saturating_mul(1u64 << checks_so_far.min(16)),
    };
    wanted.clamp(
        bounds.min_seconds,
        bounds.max_seconds.max(bounds.min_seconds),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn progress_is_weighted_by_volume_size() {
        let start = Some(at("2026-01-01T00:00:00Z"));
        let samples = [
            SnapshotSample {
                size_gib: 100,
                percent: 50,
                completed: false,
                started_at: start,
            },
            SnapshotSample {
                size_gib: 10,
                percent: 100,
                completed: true,
                started_at: start,
            },
        ];
        let progress = Progress::of(&samples, at("2026-01-01T00:10:00Z"));
        // (100*50 + 10*100) / 110 = 54.5
        assert_eq!(progress.percent, 54);
        // 600 s for 54 %, so 46 % more takes 511 s.
        assert_eq!(progress.eta_seconds, Some(511));
    }

    #[test]
    fn progress_reaches_100_only_when_every_snapshot_completed() {
        let samples = [SnapshotSample {
            size_gib: 8,
            percent: 100,
            completed: false,
            started_at: None,
        }];
        assert_eq!(Progress::of(&samples, Utc::now()).percent, 99);
        let samples = [SnapshotSample {
            size_gib: 8,
            percent: 0,
            completed: true,
            started_at: None,
        }];
        let done = Progress::of(&samples, Utc::now());
        assert_eq!((done.percent, done.eta_seconds), (100, Some(0)));
    }

    #[test]
    fn no_eta_before_any_progress() {
        let samples = [SnapshotSample {
            size_gib: 8,
            percent: 0,
            completed: false,
            started_at: Some(Utc::now()),
        }];
        assert_eq!(Progress::of(&samples, Utc::now()).eta_seconds, None);
    }

    #[test]
    fn waits_grow_with_remaining_time_within_bounds() {
        let bounds = PollBounds {
            min_seconds: 5,
            max_seconds: 300,
        };
        assert_eq!(next_wait(None, 0, bounds), 5);
        assert_eq!(next_wait(None, 3, bounds), 40);
        assert_eq!(next_wait(None, 40, bounds), 300);
        assert_eq!(next_wait(Some(4), 0, bounds), 5);
        assert_eq!(next_wait(Some(120), 0, bounds), 60);
        assert_eq!(next_wait(Some(3600), 0, bounds), 300);
    }
}
