//! `bench scale-report`: the tables of a run's `results.jsonl`, one per backend, with the growth
//! per 10× of tickets between neighbouring sizes.
use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

use super::routes_order;

/// `bench scale-report`: the scale results in `results.jsonl` as one table per database, the
/// newest run of each size, with the growth of each route per 10× tickets.
pub fn report(out: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(out.join("results.jsonl"))?;
    let mut runs: BTreeMap<String, BTreeMap<u64, Value>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)?;
        if v["scenario"] == "scale" {
            let db = v["db"].as_str().unwrap_or("").to_string();
            runs.entry(db).or_default().insert(v["tickets"].as_u64().unwrap_or(0), v);
        }
    }
    let mut md = String::new();
    for (db, by_size) in &runs {
        let sizes: Vec<u64> = by_size.keys().copied().collect();
        let first = by_size.values().next().context("no run")?;
        let names: Vec<String> = first["routes"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        // The order routes were timed in, not the map's.
        let order: Vec<&str> = routes_order();
        let mut names: Vec<String> = names;
        names.sort_by_key(|n| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
        md.push_str(&format!("#### {db}: median ms of {} requests\n\n| route |", first["samples"]));
        for s in &sizes {
            md.push_str(&format!(" {} tickets |", thousands(*s)));
        }
        for w in sizes.windows(2) {
            md.push_str(&format!(" growth per 10× ({}→{}) |", short(w[0]), short(w[1])));
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|".repeat(sizes.len() * 2 - 1));
        md.push('\n');
        for name in &names {
            md.push_str(&format!("| {name} |"));
            let medians: Vec<Option<f64>> =
                sizes.iter().map(|s| by_size[s]["routes"][name]["median_ms"].as_f64()).collect();
            for m in &medians {
                md.push_str(&m.map_or(" – |".into(), |m| format!(" {} |", fmt_ms(m))));
            }
            for (w, m) in sizes.windows(2).zip(medians.windows(2)) {
                let per10 = match (m[0], m[1]) {
                    (Some(a), Some(b)) if a > 0.0 => {
                        let decades = (w[1] as f64 / w[0] as f64).log10();
                        format!(" ×{:.2} |", (b / a).powf(1.0 / decades))
                    }
                    _ => " – |".into(),
                };
                md.push_str(&per10);
            }
            md.push('\n');
        }
        md.push_str("\n| seeding |");
        for s in &sizes {
            let (run, st) = (&by_size[s], &by_size[s]["seed"]);
            let how = match st["bulk_s"].as_f64() {
                None if run["seeding"] == "kept" => "seeded by an earlier run (kept)".to_string(),
                Some(secs) => format!(
                    "{} rows in bulk in {secs:.0} s ({:.0} rows/s)",
                    st["bulk_rows"].as_u64().unwrap_or(0),
                    st["bulk_rows"].as_f64().unwrap_or(0.0) / secs
                ),
                None => format!(
                    "through the API: {:.0} tickets/s, {:.0} comments/s, log dispatched {:.0} s after the writes",
                    st["tickets_per_s"].as_f64().unwrap_or(0.0),
                    st["comments_per_s"].as_f64().unwrap_or(0.0),
                    st["dispatch_after_writes_s"].as_f64().unwrap_or(0.0),
                ),
            };
            md.push_str(&format!(" {how}; database {} MB |", run["db_bytes"].as_u64().unwrap_or(0) / 1_000_000));
        }
        md.push_str("\n\nBuilds: ");
        md.push_str(
            &by_size
                .iter()
                .map(|(s, v)| format!("{} at {}", short(*s), v["build"].as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", "),
        );
        md.push_str("\n\n");
    }
    Ok(md)
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn short(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
