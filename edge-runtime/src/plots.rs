//! SVG plots of a bench report: the speed–accuracy curve and the latency of
//! each exit layer.

use crate::report::BenchReport;
use bundle::ExitPolicy;
use plotters::prelude::*;
use std::path::Path;

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Accuracy (with its 95% CI) against mean latency, one point per policy;
/// entropy and patience policies as separate curves, full depth as a line.
pub fn speed_accuracy(r: &BenchReport, out: &Path) -> PlotResult {
    let full = &r.policies[0];
    let series = |keep: fn(&ExitPolicy) -> bool| -> Vec<(f64, f64, f64, f64, String)> {
        let mut v: Vec<_> = r
            .policies
            .iter()
            .filter(|p| keep(&p.policy))
            .map(|p| {
                let ci = (p.accuracy_ci95[0] * 100.0, p.accuracy_ci95[1] * 100.0);
                (p.latency.mean_ms, p.accuracy * 100.0, ci.0, ci.1, p.name.clone())
            })
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let entropy = series(|p| matches!(p, ExitPolicy::Entropy { .. }));
    let patience = series(|p| matches!(p, ExitPolicy::Patience { .. }));
    let all: Vec<_> = r.policies.iter().collect();
    let ymin = all.iter().map(|p| p.accuracy_ci95[0] * 100.0).fold(f64::INFINITY, f64::min) - 0.5;
    let ymax = all.iter().map(|p| p.accuracy_ci95[1] * 100.0).fold(f64::NEG_INFINITY, f64::max) + 0.5;
    let xmax = all.iter().map(|p| p.latency.mean_ms).fold(0.0, f64::max) * 1.15;

    let root = SVGBackend::new(out, (760, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Accuracy vs latency ({} texts, batch {})", r.n, r.batch_size), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..xmax, ymin..ymax)?;
    chart.configure_mesh().x_desc("mean latency per text (ms)").y_desc("accuracy (%)").draw()?;
    let full_y = full.accuracy * 100.0;
    chart
        .draw_series(LineSeries::new(vec![(0.0, full_y), (xmax, full_y)], RED.stroke_width(1)))?
        .label(format!("full depth ({:.2} ms)", full.latency.mean_ms))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
    for (pts, colour, label) in [(&entropy, BLUE, "entropy (FastBERT speed)"), (&patience, GREEN, "patience (PABEE)")] {
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        chart.draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), 4, colour.filled())))?;
        chart.draw_series(pts.iter().map(|p| PathElement::new(vec![(p.0, p.2), (p.0, p.3)], colour.mix(0.5))))?;
        chart.draw_series(pts.iter().map(|p| Text::new(p.4.clone(), (p.0, p.1), ("sans-serif", 11))))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    root.present()?;
    Ok(())
}

/// Cost to exit after each layer (mean, from full-depth runs) with the p50 and
/// p90 of the texts that did exit there.
pub fn latency_per_exit_layer(r: &BenchReport, out: &Path) -> PlotResult {
    let layers = r.num_layers as f64;
    let ymax = r
        .exits_at_layer
        .iter()
        .flatten()
        .map(|l| l.p90_ms)
        .chain(r.cost_to_exit_after_layer_ms.iter().copied())
        .fold(0.0, f64::max)
        * 1.15;
    let root = SVGBackend::new(out, (760, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Latency per exit layer (batch {}, {} thread(s))", r.batch_size, r.threads), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5..layers + 0.5, 0.0..ymax.max(1e-3))?;
    chart.configure_mesh().x_desc("exit layer").y_desc("ms").x_labels(r.num_layers.min(24)).draw()?;
    let cost: Vec<(f64, f64)> = r.cost_to_exit_after_layer_ms.iter().enumerate().map(|(k, &ms)| (k as f64 + 1.0, ms)).collect();
    chart
        .draw_series(LineSeries::new(cost.clone(), BLACK.stroke_width(2)))?
        .label("cost to exit here (mean of full-depth segments)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
    chart.draw_series(cost.iter().map(|&p| Circle::new(p, 3, BLACK.filled())))?;
    let observed: Vec<(f64, f64, f64)> = r
        .exits_at_layer
        .iter()
        .enumerate()
        .filter_map(|(k, l)| l.map(|l| (k as f64 + 1.0, l.p50_ms, l.p90_ms)))
        .collect();
    chart
        .draw_series(observed.iter().map(|p| Circle::new((p.0, p.1), 5, BLUE.filled())))?
        .label("texts that exited here: p50 (dot) to p90 (bar)")
        .legend(|(x, y)| Circle::new((x + 8, y), 4, BLUE.filled()));
    chart.draw_series(observed.iter().map(|p| PathElement::new(vec![(p.0, p.1), (p.0, p.2)], BLUE.stroke_width(2))))?;
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    root.present()?;
    Ok(())
}
