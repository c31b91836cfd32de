//! SVG plots of a run's results (plotters, SVG backend, no font files needed).
//!
//! - `dissemination.svg`: fraction of online peers holding each tracked item against walker
//!   steps since its injection;
//! - `bytes.svg`: payload bytes sent and received per node, sorted, heaviest first;
//! - `convergence.svg`: mean coverage, fraction of items complete, and peers online over time.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::adapter::Role;
use crate::results::{Results, SamplePoint};

const SIZE: (u32, u32) = (900, 560);

/// A plot that failed, and why.
pub type PlotError = (PathBuf, String);

type Draw = fn(&Results, &Path) -> Result<(), String>;
type Metric<'a> = Box<dyn Fn(&SamplePoint) -> f64 + 'a>;

/// Writes all plots into `dir`; returns their paths.
pub fn write_all(results: &Results, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let plots: [(&str, Draw); 3] = [
        ("dissemination.svg", dissemination),
        ("bytes.svg", bytes),
        ("convergence.svg", convergence),
    ];
    let mut written = Vec::new();
    for (name, draw) in plots {
        let path = dir.join(name);
        draw(results, &path).map_err(|e| (path.clone(), e))?;
        written.push(path);
    }
    Ok(written)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn dissemination(r: &Results, path: &Path) -> Result<(), String> {
    let step = r.step_interval_s.max(1e-6);
    let x_max = r
        .item_series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0 / step))
        .fold(1.0f64, f64::max);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let caption = format!(
        "{}: dissemination of {} items (seed {})",
        r.scenario,
        r.item_series.len(),
        r.seed
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max * 1.02, 0.0..1.02)
        .map_err(err)?;
    chart
        .configure_mesh()
        .max_light_lines(2)
        .x_desc(format!("walker steps since injection ({step} s each)"))
        .y_desc("fraction of online peers holding the item")
        .draw()
        .map_err(err)?;
    for (i, s) in r.item_series.iter().enumerate() {
        let colour = Palette99::pick(i).mix(0.7);
        let points = s.points.iter().map(|&(t, c)| (t / step, c));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(1)))
            .map_err(err)?;
    }
    root.present().map_err(err)
}

fn bytes(r: &Results, path: &Path) -> Result<(), String> {
    let kib = |b: u64| b as f64 / 1024.0;
    let mut sent: Vec<f64> = r.nodes.iter().map(|n| kib(n.sent_bytes)).collect();
    let mut recv: Vec<f64> = r.nodes.iter().map(|n| kib(n.recv_bytes)).collect();
    sent.sort_by(|a, b| b.total_cmp(a));
    recv.sort_by(|a, b| b.total_cmp(a));
    let y_max = sent.iter().chain(&recv).copied().fold(1.0f64, f64::max);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: bytes per node, heaviest first (seed {})",
                r.scenario, r.seed
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..(r.nodes.len().max(2) - 1) as f64, 0.0..y_max * 1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .max_light_lines(2)
        .x_desc("node rank")
        .y_desc("KiB of UDP payload")
        .draw()
        .map_err(err)?;
    for (label, data, colour) in [("sent", &sent, BLUE), ("received", &recv, RED)] {
        let points = data.iter().enumerate().map(|(i, v)| (i as f64, *v));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

fn convergence(r: &Results, path: &Path) -> Result<(), String> {
    let peers = r
        .nodes
        .iter()
        .filter(|n| n.role == Role::Peer)
        .count()
        .max(1) as f64;
    let x_max = r.series.last().map_or(1.0, |p| p.t_s).max(1.0);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let caption = match r.convergence_s {
        Some(t) => format!("{}: converged at {t:.1} s (seed {})", r.scenario, r.seed),
        None => format!("{}: did not converge (seed {})", r.scenario, r.seed),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..1.02)
        .map_err(err)?;
    chart
        .configure_mesh()
        .max_light_lines(2)
        .x_desc("time (s)")
        .y_desc("fraction")
        .draw()
        .map_err(err)?;
    let complete = |p: &SamplePoint| {
        if p.items_injected == 0 {
            0.0
        } else {
            f64::from(p.items_complete) / f64::from(p.items_injected)
        }
    };
    let lines: [(&str, RGBColor, Metric<'_>); 3] = [
        (
            "mean coverage of injected items",
            BLUE,
            Box::new(|p| p.mean_coverage),
        ),
        ("items complete", GREEN, Box::new(complete)),
        (
            "peers online",
            BLACK,
            Box::new(move |p| f64::from(p.online_peers) / peers),
        ),
    ];
    for (label, colour, y) in lines {
        let points = r.series.iter().map(|p| (p.t_s, y(p)));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    if let Some(t) = r.convergence_s {
        chart
            .draw_series(LineSeries::new([(t, 0.0), (t, 1.02)], RED.mix(0.6)))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
