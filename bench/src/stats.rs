//! Percentiles of samples and the markdown table every benchmark prints.

use std::fmt::Write as _;
use std::time::Duration;

/// Samples of one measurement, kept whole so any percentile can be read.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: Vec<f64>,
}

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, value: f64) {
        self.values.push(value);
    }

    /// Adds a duration, in milliseconds.
    pub fn push_ms(&mut self, value: Duration) {
        self.push(value.as_secs_f64() * 1000.0);
    }

    /// The samples, in the order taken.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The `p`-th percentile (0 to 100), nearest rank; `NaN` without samples.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.values.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// The median.
    pub fn median(&self) -> f64 {
        self.percentile(50.0)
    }

    /// `median (p10-p90)`, with `digits` decimals.
    pub fn summary(&self, digits: usize) -> String {
        format!(
            "{:.digits$} ({:.digits$}-{:.digits$})",
            self.median(),
            self.percentile(10.0),
            self.percentile(90.0)
        )
    }
}

/// A markdown table built row by row.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; cells beyond the header are dropped, missing ones left empty.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as GitHub-flavoured markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| {
            let cells: Vec<&str> = (0..self.header.len())
                .map(|i| cells.get(i).map_or("", String::as_str))
                .collect();
            format!("| {} |\n", cells.join(" | "))
        };
        out.push_str(&line(&self.header));
        let _ = writeln!(out, "|{}", "---|".repeat(self.header.len()));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// `met` or `MISSED`, for the target column.
pub fn verdict(met: bool) -> String {
    if met { "met" } else { "**missed**" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = Samples::default();
        for v in 1..=10 {
            s.push(f64::from(v));
        }
        assert_eq!(s.median(), 5.0);
        assert_eq!(s.percentile(90.0), 9.0);
        assert_eq!(s.percentile(99.0), 10.0);
        assert_eq!(s.percentile(0.0), 1.0);
    }

    #[test]
    fn tables_render_as_markdown() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["1".into()]);
        assert_eq!(t.render(), "| a | b |\n|---|---|\n| 1 |  |\n");
    }
}
