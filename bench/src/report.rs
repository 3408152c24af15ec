//! `bench report`: markdown tables and an SVG plot from results.jsonl (the newest result wins for
//! each scenario/target/N/rate).
use std::{collections::BTreeMap, path::Path};

use anyhow::Result;
use plotters::prelude::*;
use serde_json::Value;

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

pub fn write(out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(out.join("results.jsonl"))?;
    let mut fanout: BTreeMap<(u64, u64, String), Value> = BTreeMap::new();
    let mut two_nodes: BTreeMap<(u64, u64), Value> = BTreeMap::new();
    let mut other: Vec<Value> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)?;
        match v["scenario"].as_str() {
            Some("fanout") => {
                let key = (
                    v["clients"].as_u64().unwrap_or(0),
                    (f(&v, "rate") * 100.0) as u64,
                    v["target"].as_str().unwrap_or("").to_string(),
                );
                fanout.insert(key, v);
            }
            Some("two-nodes") => {
                two_nodes.insert((v["clients"].as_u64().unwrap_or(0), (f(&v, "rate") * 100.0) as u64), v);
            }
            _ => other.push(v),
        }
    }
    let mut md = String::new();
    md.push_str("### Fan-out (scenario 1) and memory (scenario 2)\n\n");
    md.push_str("| N | writes/s | server | connected | delivered | p50 ms | p99 ms | max ms | p99 from request start ms | CPU µs/msg | KiB/conn |\n");
    md.push_str("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for ((n, _, _), v) in &fanout {
        md.push_str(&format!(
            "| {n} | {} | {} | {} | {:.3}% ({}/{}) | {} | {} | {} | {} | {:.2} | {:.1} |\n",
            f(v, "rate"),
            v["target"].as_str().unwrap_or(""),
            v["connected"],
            f(v, "delivered_share") * 100.0,
            v["delivered"],
            v["expected"],
            v["p50_ms"],
            v["p99_ms"],
            v["max_ms"],
            v["p99_from_start_ms"],
            f(v, "cpu_us_per_msg"),
            f(v, "kib_per_conn"),
        ));
    }
    md.push_str("\n### Ratios, ticketwire / peer (lower is better for ticketwire)\n\n");
    md.push_str("p99 is measured from the write's request start (the fair comparison: the peers emit before they answer, ticketwire answers at commit and emits from its dispatcher); the from-response ratio is shown too.\n\n");
    md.push_str("| N | writes/s | peer | p99 ratio (from request start) | p99 ratio (from response) | CPU per msg ratio | memory/conn ratio |\n|---:|---:|---|---:|---:|---:|---:|\n");
    for ((n, r, t), v) in &fanout {
        if t != "ticketwire" {
            continue;
        }
        for peer in ["socketioxide", "node"] {
            if let Some(p) = fanout.get(&(*n, *r, peer.to_string())) {
                let ratio = |k: &str| {
                    if f(p, k) > 0.0 { format!("{:.2}×", f(v, k) / f(p, k)) } else { "n/a".into() }
                };
                md.push_str(&format!(
                    "| {n} | {} | {peer} | {} | {} | {} | {} |\n",
                    f(v, "rate"),
                    ratio("p99_from_start_ms"),
                    ratio("p99_ms"),
                    ratio("cpu_us_per_msg"),
                    ratio("kib_per_conn")
                ));
            }
        }
    }
    let lagged: Vec<_> = fanout.iter().filter(|(_, v)| v["server_emit_lag_seconds"]["kind"] == "histogram").collect();
    if !lagged.is_empty() {
        md.push_str("\n### ticketwire commit → emit lag (`ticketwire_event_emit_lag_seconds`, scrape difference over the run, bucket-interpolated)\n\n| N | writes/s | events | p50 ms | p99 ms | mean ms |\n|---:|---:|---:|---:|---:|---:|\n");
        for ((n, _, _), v) in lagged {
            let h = &v["server_emit_lag_seconds"];
            let c = f(h, "count");
            md.push_str(&format!(
                "| {n} | {} | {c} | {:.1} | {:.1} | {:.1} |\n",
                f(v, "rate"),
                f(h, "0.5") * 1e3,
                f(h, "0.99") * 1e3,
                if c > 0.0 { f(h, "sum") / c * 1e3 } else { 0.0 }
            ));
        }
    }
    other.sort_by_key(|v| v["scenario"].as_str().unwrap_or("").to_string());
    let (mut wh_head, mut rest_head) = (false, false);
    for v in &other {
        match v["scenario"].as_str() {
            Some("webhooks") => md.push_str(&format!(
                "{}| {} | {} | {} | {} | {:.0} | {:.0} | {} / {} / {} | {:.1} / {:.1} |\n",
                if std::mem::replace(&mut wh_head, true) { "" } else { "\n### Webhooks (scenario 3)\n\n| users K | KB publishes | ticket writes | deliveries | deliveries/s (first→last receipt) | deliveries/s (first publish→last receipt) | receipt − created_at p50 / p99 / max ms | server first-attempt lag p50 / p99 ms (/metrics) |\n|---:|---:|---:|---:|---:|---:|---|---|\n" },
                v["users"], v["publishes"], v["ticket_writes"], v["deliveries_received"], f(v, "deliveries_per_s"), f(v, "deliveries_per_s_end_to_end"),
                v["lag_p50_ms"], v["lag_p99_ms"], v["lag_max_ms"],
                f(&v["server_first_attempt_seconds"], "0.5") * 1e3,
                f(&v["server_first_attempt_seconds"], "0.99") * 1e3,
            )),
            Some("rest") => md.push_str(&format!(
                "{}| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
                if std::mem::replace(&mut rest_head, true) { "" } else { "\n### REST writes (scenario 4)\n\n| writers | socket clients | their rooms | created | creations/s | p50 ms | p99 ms | max ms | errors | socket events received | webhook deliveries received |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n" },
                v["writers"], v["clients"], v["rooms"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).filter(|s| !s.is_empty()).unwrap_or_else(|| "own user room only".into()), v["created"], f(v, "creations_per_s"), v["p50_ms"], v["p99_ms"], v["max_ms"], v["errors"], v["socket_events_received"], v["webhook_deliveries_received"],
            )),
            _ => {}
        }
    }
    two_nodes_table(&mut md, &two_nodes);
    std::fs::write(out.join("report.md"), &md)?;
    println!("{md}");
    plot(out, &fanout)?;
    Ok(())
}

/// One row per node and one for both; RSS and KiB/conn of "both" are the two nodes' sums.
fn two_nodes_table(md: &mut String, runs: &BTreeMap<(u64, u64), Value>) {
    if runs.is_empty() {
        return;
    }
    md.push_str(
        "\n### Two nodes (scenario 5): PostgreSQL + Redis, clients half on each node, writes through node A\n\n",
    );
    md.push_str("| N | writes/s | clients on | connected | delivered | duplicates | p50 ms | p99 ms | max ms | p99 from request start ms | server emit lag p99 ms | RSS connected MiB | KiB/conn |\n");
    md.push_str("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let row = |md: &mut String, n: u64, run: &Value, label: &str, v: &Value, lag: String, rss: f64, kib: f64| {
        md.push_str(&format!(
            "| {n} | {} | {label} | {} | {:.3}% ({}/{}) | {} | {} | {} | {} | {} | {lag} | {:.0} | {:.1} |\n",
            f(run, "rate"),
            v["connected"],
            f(v, "delivered_share") * 100.0,
            v["delivered"],
            v["expected"],
            v["duplicates"],
            v["p50_ms"],
            v["p99_ms"],
            v["max_ms"],
            v["p99_from_start_ms"],
            rss / 1024.0,
            kib,
        ));
    };
    for ((n, _), run) in runs {
        let nodes = run["nodes"].as_array().cloned().unwrap_or_default();
        for v in &nodes {
            let lag = v["server_emit_lag_seconds"]["0.99"].as_f64().map_or("n/a".into(), |l| format!("{:.1}", l * 1e3));
            row(
                md,
                *n,
                run,
                &format!("node {}", v["node"].as_str().unwrap_or("?")),
                v,
                lag,
                f(v, "rss_connected_kib"),
                f(v, "kib_per_conn"),
            );
        }
        let rss: f64 = nodes.iter().map(|v| f(v, "rss_connected_kib")).sum();
        let grown: f64 = nodes.iter().map(|v| f(v, "rss_connected_kib") - f(v, "rss_before_kib")).sum();
        row(md, *n, run, "both", run, String::new(), rss, grown / f(run, "connected").max(1.0));
    }
}

fn plot(out: &Path, fanout: &BTreeMap<(u64, u64, String), Value>) -> Result<()> {
    let path = out.join("fanout.svg");
    let root = SVGBackend::new(&path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let colors = [("ticketwire", RED), ("socketioxide", BLUE), ("node", GREEN)];
    // Left: p99 vs N, one line per server and rate.
    let max_n = fanout.keys().map(|k| k.0).max().unwrap_or(1000) as f64;
    let max_p99 = fanout.values().map(|v| f(v, "p99_from_start_ms")).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&left)
        .caption("fan-out p99 from write start (ms, log) vs clients", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_n * 1.05, (1.0..max_p99 * 1.5).log_scale())?;
    chart.configure_mesh().x_desc("clients").y_desc("p99 ms").draw()?;
    let rates: std::collections::BTreeSet<u64> = fanout.keys().map(|k| k.1).collect();
    for (name, color) in colors {
        for (ri, r) in rates.iter().enumerate() {
            let pts: Vec<(f64, f64)> = fanout
                .iter()
                .filter(|(k, _)| k.2 == name && k.1 == *r)
                .map(|(k, v)| (k.0 as f64, f(v, "p99_from_start_ms").max(1.0)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let style = ShapeStyle { color: color.mix(1.0 - ri as f64 * 0.2), filled: true, stroke_width: 2 };
            chart
                .draw_series(LineSeries::new(pts.clone(), style))?
                .label(format!("{name} {}/s", *r as f64 / 100.0))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], style));
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, style)))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    // Right: KiB per connection vs N.
    let max_kib = fanout.values().map(|v| f(v, "kib_per_conn")).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&right)
        .caption("server RSS per connection (KiB) vs clients", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_n * 1.05, 0.0..max_kib * 1.2)?;
    chart.configure_mesh().x_desc("clients").y_desc("KiB/conn").draw()?;
    for (name, color) in colors {
        let mut by_n: BTreeMap<u64, f64> = BTreeMap::new();
        for (k, v) in fanout.iter().filter(|(k, _)| k.2 == name) {
            by_n.insert(k.0, f(v, "kib_per_conn"));
        }
        let pts: Vec<(f64, f64)> = by_n.into_iter().map(|(n, k)| (n as f64, k)).collect();
        let style = ShapeStyle { color: color.to_rgba(), filled: true, stroke_width: 2 };
        chart
            .draw_series(LineSeries::new(pts.clone(), style))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], style));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, style)))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    println!("plot: {}", path.display());
    Ok(())
}
