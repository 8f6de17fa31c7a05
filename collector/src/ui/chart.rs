//! Charts drawn on the server as SVG: no script, readable by screen readers through a title and a
//! table the page shows beside the chart, printable, and sent to governors as they are.

use super::html::Html;
use crate::html;

/// One series: a label and a value per period.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text (a category name).
    pub label: String,
    /// One value per period, in the order of the chart's periods.
    pub values: Vec<u64>,
}

/// A colour-blind-safe palette (Okabe–Ito), cycled.
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000",
];

/// A stacked bar chart: one bar per period, one segment per series.
pub fn stacked_bars(title: &str, periods: &[String], series: &[Series]) -> Html {
    let width = 720u32;
    let height = 260u32;
    let (left, bottom, top) = (48u32, 40u32, 16u32);
    let plot_h = height - bottom - top;
    let totals: Vec<u64> = (0..periods.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = nice_max(totals.iter().copied().max().unwrap_or(0));
    let slot = if periods.is_empty() {
        0
    } else {
        (width - left - 8) / periods.len() as u32
    };
    let bar = (slot * 7 / 10).max(1);
    let mut body = Html::new();
    // Axis and gridlines with their values.
    for tick in 0..=4u64 {
        let value = max * tick / 4;
        let y = top + plot_h - (plot_h as u64 * tick / 4) as u32;
        body.push(html!(
            "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#ccc\"/><text x=\"{}\" y=\"{}\" \
             text-anchor=\"end\" font-size=\"11\">{}</text>",
            left,
            width - 8,
            y,
            y,
            left - 4,
            y + 4,
            value
        ));
    }
    for (i, period) in periods.iter().enumerate() {
        let x = left + slot * i as u32 + (slot - bar) / 2;
        let mut base = 0u64;
        for (s_index, s) in series.iter().enumerate() {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let y0 = scale(base, max, plot_h);
            let y1 = scale(base + v, max, plot_h);
            body.push(html!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: {} ({})</title></rect>",
                x,
                top + plot_h - y1,
                bar,
                (y1 - y0).max(1),
                PALETTE[s_index % PALETTE.len()],
                period,
                v,
                s.label
            ));
            base += v;
        }
        body.push(html!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
            x + bar / 2,
            height - bottom + 14,
            period
        ));
    }
    let legend: Html = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let x = left + (i as u32 % 6) * 110;
            let y = height - 12 + (i as u32 / 6) * 14;
            html!(
                "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
                x,
                y - 9,
                PALETTE[i % PALETTE.len()],
                x + 14,
                y,
                s.label
            )
        })
        .collect();
    let rows = series.len().div_ceil(6).max(1) as u32;
    html!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" role=\"img\" \
         aria-label=\"{}\" class=\"chart\"><title>{}</title>{}{}</svg>",
        width,
        height + (rows - 1) * 14,
        title,
        title,
        body,
        legend
    )
}

fn scale(value: u64, max: u64, span: u32) -> u32 {
    (value * span as u64).checked_div(max).unwrap_or(0) as u32
}

/// A round axis maximum at or above `value` that four gridlines divide into whole round numbers
/// (4, 8, 20, 40, 80, 200, ...).
fn nice_max(value: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [4, 8, 20] {
            if m * step >= value {
                return m * step;
            }
        }
        step *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_a_round_maximum_and_escape_labels() {
        let svg = stacked_bars(
            "Alerts <by> category",
            &["w1".into(), "w2".into()],
            &[
                Series {
                    label: "self-harm".into(),
                    values: vec![3, 7],
                },
                Series {
                    label: "<x>".into(),
                    values: vec![0, 3],
                },
            ],
        );
        let s = svg.as_str();
        assert!(s.starts_with("<svg"));
        assert!(s.contains("Alerts &lt;by&gt; category"));
        assert!(s.contains("&lt;x&gt;") && !s.contains("<x>"));
        assert_eq!(
            s.matches("<rect x").count(),
            3 + 2,
            "three segments and two legend keys"
        );
        assert!(
            s.contains(">20</text>") && s.contains(">15</text>"),
            "axis tops at 20: {s}"
        );
    }

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(0), 4);
        assert_eq!(nice_max(7), 8);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(21), 40);
        assert_eq!(nice_max(4999), 8000);
    }
}
