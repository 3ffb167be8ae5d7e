//! The statistics of the runs: each figure as its median over the runs, how far they spread,
//! and the percentiles of a run's latencies.

use std::time::Duration;

/// One figure over the runs: its median, lowest and highest.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Figure {
    pub fn of(mut values: Vec<f64>) -> Figure {
        values.sort_by(f64::total_cmp);
        Figure {
            median: values[values.len() / 2],
            min: values[0],
            max: values[values.len() - 1],
        }
    }

    /// `value` as a fraction of the median, less one.
    pub fn off_median(&self, value: f64) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            value / self.median - 1.0
        }
    }

    /// The spread, as `-3.1%..+4.0%` of the median.
    pub fn spread(&self) -> String {
        let (low, high) = (self.off_median(self.min), self.off_median(self.max));
        format!("{:+.1}%..{:+.1}%", low * 100.0, high * 100.0)
    }

    /// The width of the spread, as a fraction of the median.
    pub fn width(&self) -> f64 {
        self.off_median(self.max) - self.off_median(self.min)
    }
}

/// The `p` percentile (0 to 1) of `sorted` latencies, by the nearest rank below; `None` for
/// none.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p) as usize])
}
