//! Churn: nodes that leave and come back.
//!
//! A node under churn alternates online sessions and offline downtimes drawn from two
//! distributions. Going offline drops everything addressed to it and stops its timers; coming
//! back rebuilds it through [`crate::Hooks::restart`], which is told whether the node keeps its
//! state (its store) or starts empty.

use dispersy::time::Instant;
use serde::{Deserialize, Serialize};

use crate::dist::{Dist, Span, check_probability};

/// How nodes churn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnConfig {
    /// Length of an online session.
    pub session: Dist,
    /// Length of an offline period.
    pub downtime: Dist,
    /// Probability that a restarting node keeps its state.
    #[serde(default = "one")]
    pub keep_state: f64,
    /// Fraction of eligible nodes that churn at all (scenario runner).
    #[serde(default = "one")]
    pub fraction: f64,
    /// Whether trackers are exempt (scenario runner).
    #[serde(default = "yes")]
    pub exempt_trackers: bool,
    /// When the first session starts counting (scenario runner); before it nobody leaves.
    #[serde(default)]
    pub start: Span,
    /// When churn ends: nobody leaves at or after it, and nodes offline then come back at
    /// their scheduled time and stay (so a run can end with everyone online). Unset: never.
    #[serde(default)]
    pub end: Option<Span>,
}

impl ChurnConfig {
    /// Whether a departure scheduled at `at` (time since the start of the run) may happen.
    pub fn leaves_at(&self, at: std::time::Duration) -> bool {
        self.end.is_none_or(|end| at < end.0)
    }
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

impl ChurnConfig {
    /// Sessions and downtimes from `session` and `downtime`; everyone else's defaults.
    pub fn new(session: Dist, downtime: Dist) -> ChurnConfig {
        ChurnConfig {
            session,
            downtime,
            keep_state: 1.0,
            fraction: 1.0,
            exempt_trackers: true,
            start: Span::default(),
            end: None,
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), String> {
        self.session.validate()?;
        self.downtime.validate()?;
        check_probability("churn keep_state", self.keep_state)?;
        check_probability("churn fraction", self.fraction)
    }
}

/// A node's churn state, as reported in results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnStats {
    /// Times it went offline.
    pub departures: u32,
    /// Times it came back with its state.
    pub restarts_kept: u32,
    /// Times it came back empty.
    pub restarts_lost: u32,
    /// Total time offline, microseconds (closed periods only).
    pub offline_us: u64,
    /// When the current offline period began.
    #[serde(skip)]
    pub(crate) offline_since: Option<Instant>,
}

impl ChurnStats {
    pub(crate) fn went_down(&mut self, now: Instant) {
        self.departures += 1;
        self.offline_since = Some(now);
    }

    pub(crate) fn came_up(&mut self, now: Instant, kept: bool) {
        if let Some(since) = self.offline_since.take() {
            self.offline_us += now.as_micros().saturating_sub(since.as_micros());
        }
        if kept {
            self.restarts_kept += 1;
        } else {
            self.restarts_lost += 1;
        }
    }
}
