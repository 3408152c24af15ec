//! Server latency histograms from `/metrics`.
use serde_json::{Value, json};

use crate::servers::{Running, Target};

/// One latency metric from /metrics: the quantile lines of a summary, or, for a histogram
/// (`_bucket{le=".."}` lines, summed over label sets), the cumulative bucket counts with
/// "0.5"/"0.99" estimated by linear interpolation inside the bucket (as Prometheus'
/// `histogram_quantile` does). With `base` (an earlier scrape's result) the buckets are the
/// difference, i.e. only what was observed between the two scrapes.
pub fn summary(metrics: &str, name: &str) -> Value {
    summary_since(metrics, name, None)
}

fn summary_since(metrics: &str, name: &str, base: Option<&Value>) -> Value {
    let mut out = serde_json::Map::new();
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    let mut sum = 0.0;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if let Some(q) = rest.strip_prefix("{quantile=\"") {
            if let Some((q, v)) = q.split_once("\"} ") {
                out.insert(q.to_string(), json!(v.trim().parse::<f64>().unwrap_or(f64::NAN)));
            }
        } else if let Some(b) = rest.strip_prefix("_bucket{") {
            let Some((labels, v)) = b.rsplit_once("} ") else {
                continue;
            };
            let Some(le) =
                labels.split(',').find_map(|l| l.trim().strip_prefix("le=\"")).map(|l| l.trim_end_matches('"'))
            else {
                continue;
            };
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse::<f64>().unwrap_or(f64::NAN) };
            let v = v.trim().parse::<f64>().unwrap_or(0.0);
            match buckets.iter_mut().find(|(l, _)| *l == le) {
                Some(e) => e.1 += v,
                None => buckets.push((le, v)),
            }
        } else if let Some(v) = rest
            .strip_prefix("_sum ")
            .or_else(|| rest.strip_prefix("_sum{").and_then(|r| r.rsplit_once("} ").map(|x| x.1)))
        {
            sum += v.trim().parse::<f64>().unwrap_or(0.0);
        } else if let Some(v) = rest.strip_prefix("_count ") {
            out.insert("count".into(), json!(v.trim().parse::<f64>().unwrap_or(0.0)));
        }
    }
    if buckets.is_empty() {
        return Value::Object(out);
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(base) = base {
        let old = base["buckets"].as_array().cloned().unwrap_or_default();
        for (le, v) in buckets.iter_mut() {
            let prev = old
                .iter()
                .find(|p| p[0].as_f64().unwrap_or(f64::INFINITY) == *le || (p[0].is_null() && le.is_infinite()))
                .and_then(|p| p[1].as_f64())
                .unwrap_or(0.0);
            *v -= prev;
        }
        sum -= base["sum"].as_f64().unwrap_or(0.0);
    }
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let quantile = |q: f64| -> Value {
        if total <= 0.0 {
            return Value::Null;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, c) in &buckets {
            if c >= rank {
                if le.is_infinite() {
                    return json!(lower.0); // above the top bucket: report its bound
                }
                let frac = if c > lower.1 { (rank - lower.1) / (c - lower.1) } else { 1.0 };
                return json!(lower.0 + (le - lower.0) * frac);
            }
            lower = (le, c);
        }
        Value::Null
    };
    out.insert("kind".into(), json!("histogram"));
    out.insert("0.5".into(), quantile(0.5));
    out.insert("0.99".into(), quantile(0.99));
    out.insert("count".into(), json!(total));
    out.insert("sum".into(), json!(sum));
    out.insert(
        "buckets".into(),
        Value::Array(
            buckets.iter().map(|(l, c)| json!([if l.is_infinite() { Value::Null } else { json!(l) }, c])).collect(),
        ),
    );
    Value::Object(out)
}

/// One metric from the server's /metrics (ticketwire only), optionally as a difference.
pub async fn scrape(run: &Running, name: &str, base: Option<&Value>) -> Option<Value> {
    if run.target != Target::Ticketwire {
        return None;
    }
    let text = run.http.get(format!("{}/metrics", run.base)).send().await.ok()?.text().await.ok()?;
    Some(summary_since(&text, name, base))
}
