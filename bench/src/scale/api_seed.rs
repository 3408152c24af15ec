//! Seeding through the REST API: the people and articles of every run, and the tickets of
//! `--seed api` (or the sample `--seed bulk` checks the rest against).
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::{Value, json};

use super::{Desk, ScaleArgs, wait_for_dispatch};
use crate::{
    plan::{self, Author},
    servers::{self, mint},
};

pub(super) async fn ok(r: reqwest::RequestBuilder) -> Result<Value> {
    let r = r.send().await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("{status}: {}", text.chars().take(300).collect::<String>());
    }
    Ok(serde_json::from_str(&text)?)
}

/// Sends the `n` requests `make` builds, `writers` at a time, answers in order. A request that
/// fails is built and sent again (up to 5 times: a 503 is the server saying "again"). Returns
/// the answers and the rate.
async fn many<F>(what: &str, n: usize, writers: usize, make: F) -> Result<(Vec<Value>, f64)>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let done = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let progress = {
        let (done, what) = (done.clone(), what.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let d = done.load(Ordering::Relaxed);
                eprintln!("    {what}: {d}/{n} ({:.0}/s)", d as f64 / t.elapsed().as_secs_f64());
            }
        })
    };
    let make = &make;
    let out: Vec<Result<Value>> = futures::stream::iter(0..n)
        .map(|i| {
            let done = done.clone();
            async move {
                let mut last = anyhow::anyhow!("not sent");
                for attempt in 0..5u64 {
                    match ok(make(i)).await {
                        Ok(v) => {
                            done.fetch_add(1, Ordering::Relaxed);
                            return Ok(v);
                        }
                        Err(e) => last = e,
                    }
                    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
                }
                Err(last.context(format!("{what} {i}")))
            }
        })
        .buffered(writers)
        .collect()
        .await;
    progress.abort();
    let secs = t.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    eprintln!("  {what}: {n} in {secs:.1}s ({rate:.0}/s)");
    Ok((out.into_iter().collect::<Result<Vec<_>>>()?, rate))
}

pub(super) struct Seeded {
    pub(super) tickets: Vec<String>,
    pub(super) stats: Value,
}

pub(super) async fn seed(desk: &mut Desk, tw: &servers::Tw, a: &ScaleArgs, n: usize) -> Result<Seeded> {
    let t0 = Instant::now();
    let ids = tw.create_users("agent", a.agents).await?;
    desk.agents = ids.into_iter().map(|id| Ok((id.clone(), mint(&id, "agent")?))).collect::<Result<_>>()?;
    eprintln!("  {} agents", desk.agents.len());
    // Before the customers exist: a publish notifies every active user, and a KB is usually
    // written before most of its readers arrive.
    let (_, articles_per_s) = many("articles", a.articles, a.writers, |i| {
        let body = plan::article_plan(i);
        desk.http.post(format!("{}/api/kb/articles", desk.base)).bearer_auth(&desk.admin).json(&body)
    })
    .await?;
    let ids = tw.create_users("customer", a.customers).await?;
    desk.customers = ids.into_iter().map(|id| Ok((id.clone(), mint(&id, "customer")?))).collect::<Result<_>>()?;
    eprintln!("  {} customers ({:.0}s so far)", desk.customers.len(), t0.elapsed().as_secs_f64());

    let (customers, agents) = desk.ids();
    let plans: Vec<plan::TicketPlan> = (0..n).map(|i| plan::ticket_plan(i, &customers, &agents)).collect();
    let (made, tickets_per_s) = many("tickets", n, a.writers, |i| {
        let p = &plans[i];
        desk.http.post(format!("{}/api/tickets", desk.base)).bearer_auth(&desk.agents[p.agent].1).json(&p.body)
    })
    .await?;
    let tickets: Vec<String> =
        made.iter().map(|t| t["id"].as_str().map(str::to_string).context("ticket id")).collect::<Result<_>>()?;

    // The customer writes, the agent answers, the agent leaves an internal note.
    let (_, comments_per_s) = many("comments", plan::COMMENTS * n, a.writers, |k| {
        let p = &plans[k / plan::COMMENTS];
        let (author, body) = plan::comment_plan(k);
        let token = match author {
            Author::Requester => &desk.customers[p.requester].1,
            Author::Agent => &desk.agents[p.agent].1,
        };
        let ticket = &tickets[k / plan::COMMENTS];
        desk.http.post(format!("{}/api/tickets/{ticket}/comments", desk.base)).bearer_auth(token).json(&body)
    })
    .await?;
    let writes_s = t0.elapsed().as_secs_f64();
    let dispatched = Instant::now();
    wait_for_dispatch(desk).await?;
    let dispatch_s = dispatched.elapsed().as_secs_f64();
    eprintln!("  the dispatcher caught up {dispatch_s:.0}s after the last write");
    Ok(Seeded {
        tickets,
        stats: json!({
            "articles_per_s": articles_per_s,
            "tickets_per_s": tickets_per_s,
            "comments_per_s": comments_per_s,
            "writes_s": writes_s,
            "dispatch_after_writes_s": dispatch_s,
        }),
    })
}
