//! Full-text search: the query language, ranking, highlights, who matches what (internal notes
//! are staff-only), the index following every write, pagination, and hostile searches.
#![allow(clippy::unwrap_used)] // a test that meets the unexpected should stop right there
mod common;

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn subjects(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|t| t["subject"].as_str().unwrap().to_string()).collect()
}

async fn search(app: &common::TestApp, who: &common::Actor, q: &str) -> Value {
    app.get(&format!("/api/tickets?q={}", enc(q)), who, 200).await
}

async fn found(app: &common::TestApp, who: &common::Actor, q: &str) -> Vec<String> {
    let mut s = subjects(&search(app, who, q).await);
    s.sort();
    s
}

#[tokio::test]
async fn the_query_language_ranking_and_highlights() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    for (subject, description) in [
        ("Printer on fire", "Smoke from <b>tray 2</b> & a paper jam"),
        ("Paper everywhere", "The jam of paper in the printer again"),
        ("VPN down", "Cannot reach the printer server through the VPN"),
        ("Toner low", "Printer toner is low"),
        ("Email bounce", "Mail to a.b@example.com bounces; café closed"),
    ] {
        app.post("/api/tickets", &agent, json!({ "subject": subject, "description": description }), 201).await;
    }
    // Words are ANDed, case does not matter.
    assert_eq!(found(&app, &agent, "PRINTER paper").await, ["Paper everywhere", "Printer on fire"]);
    // A phrase matches its words in a row.
    assert_eq!(found(&app, &agent, "\"paper jam\"").await, ["Printer on fire"]);
    // Exclusion, of a word and of a phrase.
    assert_eq!(found(&app, &agent, "printer -toner -vpn").await, ["Paper everywhere", "Printer on fire"]);
    assert_eq!(found(&app, &agent, "printer -\"paper jam\" -toner").await, ["Paper everywhere", "VPN down"]);
    // Prefixes.
    assert_eq!(found(&app, &agent, "bounc*").await, ["Email bounce"]);
    assert_eq!(found(&app, &agent, "ton* pri*").await, ["Toner low"]);
    // An address is a phrase of its words; accents are kept, case is folded.
    assert_eq!(found(&app, &agent, "a.b@example.com").await, ["Email bounce"]);
    assert_eq!(found(&app, &agent, "example").await, ["Email bounce"]);
    assert_eq!(found(&app, &agent, "CAFÉ").await, ["Email bounce"]);
    assert!(found(&app, &agent, "cafe").await.is_empty());
    // Whole words: a part of one is not a match without `*`.
    assert!(found(&app, &agent, "print").await.is_empty());

    // Ranked: a match in the subject weighs more than one in the description.
    let page = search(&app, &agent, "printer").await;
    let ranked = subjects(&page);
    assert_eq!(ranked.len(), 4);
    assert_eq!(ranked[0], "Printer on fire", "{page}");
    let scores: Vec<f64> = page["items"].as_array().unwrap().iter().map(|t| t["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");

    // Highlights: escaped text, matched words marked.
    let fire = &search(&app, &agent, "printer tray").await["items"][0];
    assert_eq!(fire["subject"], "Printer on fire", "the ticket itself is unchanged");
    assert_eq!(fire["highlight"]["subject"], "<mark>Printer</mark> on fire");
    assert_eq!(fire["highlight"]["snippet"], "Smoke from &lt;b&gt;<mark>tray</mark> 2&lt;/b&gt; &amp; a paper jam");
    assert_eq!(fire["highlight"]["snippet_from"], "description");
    // Without a search, a list has neither score nor highlight.
    let plain = app.get("/api/tickets", &agent, 200).await;
    assert!(plain["items"][0].get("highlight").is_none() && plain["items"][0].get("score").is_none());

    // The list's filters hold with a search.
    let t = app.post("/api/tickets", &agent, json!({ "subject": "Printer jammed", "priority": "urgent" }), 201).await;
    let urgent = app.get("/api/tickets?q=printer&priority=urgent", &agent, 200).await;
    assert_eq!(subjects(&urgent), ["Printer jammed"]);
    app.patch(&format!("/api/tickets/{}", t["id"].as_str().unwrap()), &agent, json!({"status": "closed"}), 200).await;
    assert_eq!(subjects(&app.get("/api/tickets?q=printer&status=closed", &agent, 200).await), ["Printer jammed"]);
    assert!(subjects(&app.get("/api/tickets?q=printer&status=pending", &agent, 200).await).is_empty());
}

#[tokio::test]
async fn customers_match_only_what_they_may_read() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let alice = app.customer("Alice").await;
    let bob = app.customer("Bob").await;
    let mine = app
        .post("/api/tickets", &alice, json!({ "subject": "Laptop broken", "description": "screen flickers" }), 201)
        .await;
    let id = mine["id"].as_str().unwrap();
    app.post("/api/tickets", &bob, json!({ "subject": "Laptop stolen", "description": "left on a train" }), 201).await;
    app.post(&format!("/api/tickets/{id}/comments"), &agent, json!({ "content": "Replacement keyboard ordered" }), 201)
        .await;
    let note = app
        .post(
            &format!("/api/tickets/{id}/comments"),
            &agent,
            json!({ "content": "Customer dropped it: warranty void, zanzibar", "internal": true }),
            201,
        )
        .await;

    // Customers: their own tickets, public comments, never internal notes.
    assert_eq!(found(&app, &alice, "laptop").await, ["Laptop broken"]);
    assert_eq!(found(&app, &bob, "laptop").await, ["Laptop stolen"]);
    assert_eq!(found(&app, &alice, "keyboard").await, ["Laptop broken"]);
    assert!(found(&app, &alice, "zanzibar").await.is_empty(), "an internal note matched for a customer");
    assert!(found(&app, &alice, "laptop warranty").await.is_empty());
    assert!(found(&app, &alice, "\"warranty void\"").await.is_empty());
    assert!(found(&app, &alice, "zanz*").await.is_empty());
    // Nor do words only in internal notes exclude anything for them.
    assert_eq!(found(&app, &alice, "laptop -zanzibar").await, ["Laptop broken"]);
    assert!(found(&app, &bob, "keyboard").await.is_empty());

    // Staff match internal notes, and are shown where.
    let hit = &search(&app, &agent, "zanzibar").await["items"][0];
    assert_eq!(hit["id"], id);
    assert_eq!(hit["highlight"]["snippet_from"], "internal_note");
    assert_eq!(hit["highlight"]["comment_id"], note["id"]);
    assert!(hit["highlight"]["snippet"].as_str().unwrap().contains("<mark>zanzibar</mark>"));
    assert!(found(&app, &agent, "laptop -zanzibar").await == ["Laptop stolen"]);
    let public = &search(&app, &alice, "keyboard").await["items"][0];
    assert_eq!(public["highlight"]["snippet_from"], "comment");
    assert_eq!(public["highlight"]["snippet"], "Replacement <mark>keyboard</mark> ordered");

    // The note made public: customers match it now; made internal again: no longer.
    let nid = note["id"].as_str().unwrap();
    app.patch(&format!("/api/comments/{nid}"), &agent, json!({ "internal": false }), 200).await;
    assert_eq!(found(&app, &alice, "zanzibar").await, ["Laptop broken"]);
    app.patch(&format!("/api/comments/{nid}"), &agent, json!({ "internal": true }), 200).await;
    assert!(found(&app, &alice, "zanzibar").await.is_empty());
}

#[tokio::test]
async fn the_index_follows_every_write() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let t = app
        .post("/api/tickets", &agent, json!({ "subject": "Quokka sighting", "description": "near desk" }), 201)
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(found(&app, &agent, "quokka").await, ["Quokka sighting"]);
    app.patch(&format!("/api/tickets/{id}"), &agent, json!({ "subject": "Wombat sighting" }), 200).await;
    assert!(found(&app, &agent, "quokka").await.is_empty());
    assert_eq!(found(&app, &agent, "wombat").await, ["Wombat sighting"]);
    // A status change leaves the text, and the index, as they were.
    app.patch(&format!("/api/tickets/{id}"), &agent, json!({ "status": "pending" }), 200).await;
    assert_eq!(found(&app, &agent, "wombat desk").await, ["Wombat sighting"]);

    let c = app.post(&format!("/api/tickets/{id}/comments"), &agent, json!({ "content": "saw a platypus" }), 201).await;
    let cid = c["id"].as_str().unwrap().to_string();
    assert_eq!(found(&app, &agent, "platypus wombat").await, ["Wombat sighting"]);
    app.patch(&format!("/api/comments/{cid}"), &agent, json!({ "content": "saw an echidna" }), 200).await;
    assert!(found(&app, &agent, "platypus").await.is_empty());
    assert_eq!(found(&app, &agent, "echidna").await, ["Wombat sighting"]);
    app.delete(&format!("/api/comments/{cid}"), &agent, 204).await;
    assert!(found(&app, &agent, "echidna").await.is_empty());

    // Comments written at once all reach the ticket's document (on PostgreSQL, each from its
    // own transaction).
    let words: Vec<String> = (0..8).map(|i| format!("marsupial{i}")).collect();
    let path = format!("/api/tickets/{id}/comments");
    let writes =
        words.iter().map(|w| app.call(Method::POST, &path, Some(&agent.token), Some(json!({ "content": w })), 201));
    futures::future::join_all(writes).await;
    for w in &words {
        assert_eq!(found(&app, &agent, w).await, ["Wombat sighting"], "{w}");
    }

    // Tickets opened together (one group commit) are each indexed.
    let opens = (0..12).map(|i| {
        app.call(
            Method::POST,
            "/api/tickets",
            Some(&agent.token),
            Some(json!({ "subject": format!("Batch numbat{i}") })),
            201,
        )
    });
    futures::future::join_all(opens).await;
    assert_eq!(found(&app, &agent, "batch").await.len(), 12);
    assert_eq!(found(&app, &agent, "numbat7").await, ["Batch numbat7"]);

    app.delete(&format!("/api/tickets/{id}"), &agent, 204).await;
    assert!(found(&app, &agent, "wombat").await.is_empty());
    assert!(found(&app, &agent, "marsupial3").await.is_empty());
}

#[tokio::test]
async fn ranked_pages_follow_on_without_gaps() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let mut made = HashSet::new();
    for i in 0..13 {
        // Different weights of the word, and ties, across pages.
        let description = "koala ".repeat(1 + i % 4);
        let subject = if i % 3 == 0 { format!("Koala {i}") } else { format!("Other {i}") };
        let t = app.post("/api/tickets", &agent, json!({ "subject": subject, "description": description }), 201).await;
        made.insert(t["id"].as_str().unwrap().to_string());
    }
    let all = search(&app, &agent, "koala").await;
    let order: Vec<String> =
        all["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().into()).collect();
    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/tickets?q=koala&limit=4&cursor={cursor}"), &agent, 200).await;
        walked.extend(page["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(walked, order, "pages in the order of one whole answer, no duplicate, no gap");
    assert_eq!(walked.iter().cloned().collect::<HashSet<_>>(), made);
    // A cursor naming no match (a ticket gone, or another answer's) ends the walk.
    let other = app.post("/api/tickets", &agent, json!({ "subject": "unrelated" }), 201).await;
    let after = app.get(&format!("/api/tickets?q=koala&cursor={}", other["id"].as_str().unwrap()), &agent, 200).await;
    assert!(after["items"].as_array().unwrap().is_empty());
}

/// A customer's search reads their own tickets first and looks each up in the index: ranked as
/// any search (subject over description over comments), in pages that follow on, never another
/// customer's ticket, never an internal note.
#[tokio::test]
async fn a_customers_search_is_ranked_and_paged_like_any() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let (alice, bob) = (app.customer("Alice").await, app.customer("Bob").await);
    let mut mine = Vec::new();
    for i in 0..7 {
        let (subject, description) = if i == 3 {
            ("Wombat in the subject".to_string(), "nothing".to_string())
        } else {
            (format!("Ticket {i}"), "wombat ".repeat(1 + i % 3))
        };
        let t = app.post("/api/tickets", &alice, json!({ "subject": subject, "description": description }), 201).await;
        mine.push(t["id"].as_str().unwrap().to_string());
    }
    app.post("/api/tickets", &bob, json!({ "subject": "Wombat for Bob", "description": "wombat" }), 201).await;
    // Her ticket whose only "wombat" is in an internal note.
    let calm = app.post("/api/tickets", &alice, json!({ "subject": "Quiet one", "description": "calm" }), 201).await;
    let calm_id = calm["id"].as_str().unwrap();
    app.post(
        &format!("/api/tickets/{calm_id}/comments"),
        &agent,
        json!({ "content": "wombat seen", "internal": true }),
        201,
    )
    .await;

    let whole = search(&app, &alice, "wombat").await;
    let order: Vec<String> =
        whole["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().into()).collect();
    assert_eq!(order.len(), 7, "her seven, not Bob's, not the one with only an internal note: {whole}");
    assert!(mine.iter().all(|id| order.contains(id)));
    assert_eq!(whole["items"][0]["subject"], "Wombat in the subject", "the subject weighs most: {whole}");
    let scores: Vec<f64> = whole["items"].as_array().unwrap().iter().map(|t| t["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores.iter().all(|s| *s > 0.0), "best first: {scores:?}");

    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/tickets?q=wombat&limit=3&cursor={cursor}"), &alice, 200).await;
        walked.extend(page["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(walked, order, "pages in the order of the whole answer, no duplicate, no gap");
    // Staff narrowing by requester read the same way, and see the internal note's ticket too.
    let by_requester = app.get(&format!("/api/tickets?q=wombat&requester_id={}", alice.id), &agent, 200).await;
    assert_eq!(by_requester["items"].as_array().unwrap().len(), 8, "{by_requester}");
}

#[tokio::test]
async fn articles_are_searched_alike() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let c = app.customer("Cleo").await;
    for (title, body, tags, status) in [
        ("Resetting the VPN", "Turn the <VPN> client off and on", json!(["network"]), "published"),
        ("Printer drivers", "Install the VPN-free driver", json!(["printing"]), "published"),
        ("Network outage runbook", "Staff only: VPN concentrator restart", json!(["network"]), "draft"),
    ] {
        let body = json!({ "title": title, "body": body, "tags": tags, "status": status });
        app.post("/api/kb/articles", &agent, body, 201).await;
    }
    let titles = |v: &Value| subjects_of(v, "title");
    let anon = app.call(Method::GET, "/api/kb/articles?q=vpn", None, None, 200).await;
    assert_eq!(titles(&anon), ["Resetting the VPN", "Printer drivers"], "the title match first");
    assert_eq!(anon["items"][0]["highlight"]["title"], "Resetting the <mark>VPN</mark>");
    assert_eq!(anon["items"][0]["highlight"]["snippet"], "Turn the &lt;<mark>VPN</mark>&gt; client off and on");
    // Tags are searched; drafts only by staff.
    assert_eq!(titles(&app.get("/api/kb/articles?q=network", &c, 200).await), ["Resetting the VPN"]);
    assert_eq!(titles(&app.get("/api/kb/articles?q=network", &agent, 200).await).len(), 2);
    assert_eq!(titles(&app.get("/api/kb/articles?q=concentrator&status=draft", &agent, 200).await).len(), 1);
    assert!(titles(&app.get("/api/kb/articles?q=concentrator", &c, 200).await).is_empty());
    assert_eq!(titles(&app.get("/api/kb/articles?q=vpn%20-driver", &c, 200).await), ["Resetting the VPN"]);
    app.get("/api/kb/articles?q=-vpn", &c, 422).await;
}

fn subjects_of(v: &Value, field: &str) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|t| t[field].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn hostile_searches_never_fail() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let c = app.customer("Cleo").await;
    app.post("/api/tickets", &c, json!({ "subject": "Ordinary printer trouble", "description": "it jams" }), 201).await;
    // About the longest query string an HTTP client sends (http's URI limit is 64 KiB).
    let huge = "printer ".repeat(5_000);
    let hostile = [
        "\"",
        "\"\"\"",
        "\"printer",
        "printer\"",
        "*",
        "**",
        "printer**",
        "-",
        "--printer",
        "- printer",
        "NOT printer",
        "printer NOT",
        "printer OR jams",
        "printer AND",
        "NEAR(printer jams)",
        "printer + jams",
        "(printer",
        "printer)",
        "{subject}: printer",
        "subject:printer",
        "^printer",
        "printer:*",
        "'printer' & 'jams'",
        "!printer",
        "printer <-> jams",
        "\\printer\\",
        "%printer%",
        "_",
        "\u{0}",
        "printer\u{0}jams",
        "\u{202E}printer",
        "printer \u{FEFF}",
        "🎫🔥",
        "票",
        "'; DROP TABLE tickets; --",
        "\"); DELETE FROM ticket_fts; --",
    ];
    for who in [&agent, &c] {
        for q in hostile {
            for path in ["/api/tickets", "/api/kb/articles"] {
                let (status, body) =
                    app.try_call(Method::GET, &format!("{path}?q={}", enc(q)), Some(&who.token), None).await;
                assert!(status == 200 || status == 422, "{path} q={q:?}: {status} {body}");
                if status == 422 {
                    assert_eq!(body["code"], "validation", "{q:?}: {body}");
                } else {
                    assert!(body["items"].is_array(), "{q:?}: {body}");
                }
            }
        }
    }
    // Some of them are ordinary searches once read.
    assert_eq!(found(&app, &c, "\"printer").await, ["Ordinary printer trouble"]);
    // Too much to read: a validation error naming q, never a 500.
    for q in ["a*", "-printer", huge.as_str(), &"word ".repeat(40), &"x".repeat(200)] {
        let e = app.get(&format!("/api/tickets?q={}", enc(q)), &c, 422).await;
        assert_eq!(e["code"], "validation");
        assert!(e["detail"].as_str().unwrap().starts_with("q:"), "{e}");
    }
    // A megabyte in the query string, if a client sends it at all, is turned away unread.
    let megabyte = "x".repeat(1 << 20);
    if let Ok(resp) = app.client.get(app.url(&format!("/api/tickets?q={megabyte}"))).bearer_auth(&c.token).send().await
    {
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    app.get("/api/users/me", &c, 200).await;
}

/// Texts as long as the API takes, in the words that make the largest PostgreSQL documents
/// (many distinct short words of four-byte characters), are indexed (their first characters)
/// without failing the write.
#[tokio::test]
async fn the_longest_texts_are_indexed() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let wide = |n: usize, salt: u32| -> String {
        let ch = |k: u32| char::from_u32(0x20000 + k % 42_000).unwrap();
        let mut out = String::new();
        let mut k = 0u32;
        while out.chars().count() + 3 <= n {
            out.push(ch(k.wrapping_mul(2).wrapping_add(salt)));
            out.push(ch(k.wrapping_mul(7).wrapping_add(1 + salt)));
            out.push(' ');
            k += 1;
        }
        out
    };
    let description = format!("needle {}", wide(99_990, 0));
    let t = app.post("/api/tickets", &agent, json!({ "subject": "Long one", "description": description }), 201).await;
    let id = t["id"].as_str().unwrap();
    for (i, internal) in [false, true, false].into_iter().enumerate() {
        let content = format!("haystack{i} {}", wide(49_980, 3 + i as u32));
        app.post(
            &format!("/api/tickets/{id}/comments"),
            &agent,
            json!({ "content": content, "internal": internal }),
            201,
        )
        .await;
    }
    assert_eq!(found(&app, &agent, "needle").await, ["Long one"]);
    assert_eq!(found(&app, &agent, "haystack0").await, ["Long one"]);
    assert_eq!(found(&app, &agent, "haystack1").await, ["Long one"]);
    app.patch(&format!("/api/tickets/{id}"), &agent, json!({ "description": wide(100_000, 9) }), 200).await;
    assert!(found(&app, &agent, "needle").await.is_empty());
    let page = search(&app, &agent, "haystack0").await;
    assert!(page["items"][0]["highlight"]["snippet"].as_str().unwrap().starts_with("<mark>haystack0</mark>"));
}

/// A word in more tickets than a search ranks ([`ticketwire::domain::search::RANKED`]): the
/// newest that many matches are ranked, best first, and an older ticket is left out however
/// well it matches; a filter, or a customer's own view, applies before that bound, so the old
/// ticket is found among its requester's. Alike on both databases.
#[tokio::test]
async fn a_common_word_ranks_the_newest_matches() {
    use futures::StreamExt;
    let ranked = ticketwire::domain::search::RANKED as usize;
    // On PostgreSQL a search looks among the newest tickets first: here all but the oldest,
    // which hold as many matches of `walrus` as are ranked (the answer from the window), and
    // none of `note` (the answer from all tickets). The answers are those of a search of all.
    let app = common::spawn_with(|c| c.search.window_tickets = ranked as u64 + 1).await;
    let agent = app.agent("Agnes").await;
    let (carla, olga) = (app.customer("Carla").await, app.customer("Olga").await);
    let open = |subject: String, description: String, requester: &str| {
        let body = json!({ "subject": subject, "description": description, "requester_id": requester });
        let (app, agent) = (&app, &agent);
        async move { app.post("/api/tickets", agent, body, 201).await["id"].as_str().unwrap().to_string() }
    };
    // The best match of all, and the oldest.
    let oldest = open("Walrus walrus".into(), "walrus ".repeat(20), &carla.id).await;
    app.post(
        &format!("/api/tickets/{oldest}/comments"),
        &agent,
        json!({ "content": "walrus note", "internal": true }),
        201,
    )
    .await;
    let weak: Vec<String> = futures::stream::iter(0..ranked)
        .map(|i| open(format!("Other {i}"), "a walrus and many other words in a longer text".into(), &olga.id))
        .buffered(16)
        .collect()
        .await;
    let newest = open("Walrus walrus newest".into(), "walrus walrus".into(), &olga.id).await;

    let ids = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect()
    };
    let first = app.get("/api/tickets?q=walrus&limit=200", &agent, 200).await;
    assert_eq!(ids(&first)[0], newest, "the best of the newest first");
    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/tickets?q=walrus&limit=200&cursor={cursor}"), &agent, 200).await;
        walked.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(walked.len(), ranked, "as many as are ranked");
    let walked: HashSet<String> = walked.into_iter().collect();
    assert_eq!(walked.len(), ranked, "no ticket twice");
    assert!(!walked.contains(&oldest), "older than the newest {ranked} matches");
    assert!(walked.contains(&newest));
    let weak: HashSet<String> = weak.into_iter().collect();
    assert_eq!(walked.iter().filter(|id| weak.contains(*id)).count(), ranked - 1, "the newest of the rest");

    // Narrowed by a filter, or to a customer's own tickets, the old one is among the matches.
    let by_requester = app.get(&format!("/api/tickets?q=walrus&requester_id={}", carla.id), &agent, 200).await;
    assert_eq!(ids(&by_requester), std::slice::from_ref(&oldest));
    assert_eq!(ids(&search(&app, &carla, "walrus").await), std::slice::from_ref(&oldest));
    // A customer's view stays their own, public texts only.
    assert!(ids(&search(&app, &olga, "walrus").await).iter().all(|id| *id != oldest));
    assert!(search(&app, &carla, "note").await["items"].as_array().unwrap().is_empty(), "internal notes stay staff's");
    let staff_note = app.get(&format!("/api/tickets?q=note&requester_id={}", carla.id), &agent, 200).await;
    assert_eq!(ids(&staff_note), std::slice::from_ref(&oldest));
    // Only the oldest ticket holds `note`, outside the window: found all the same.
    assert_eq!(ids(&search(&app, &agent, "note").await), [oldest]);
}

#[tokio::test]
async fn a_long_prefix_matches_every_word_it_stands_for() {
    let app = common::spawn_app().await;
    let agent = app.agent("Agnes").await;
    let alice = app.customer("Alice").await;
    for (subject, description) in [
        ("Restore the backup", "restore failed at noon"),
        ("Restart loop", "the router keeps restarting"),
        ("Restaurant wifi", "guest network at the restaurant"),
        ("Rest of the order", "where is the rest"),
        ("Unrelated", "a printer is out of toner"),
        ("Résumé upload", "the résumé form fails"),
    ] {
        app.post("/api/tickets", &agent, json!({ "subject": subject, "description": description }), 201).await;
    }
    let all_rest = ["Rest of the order", "Restart loop", "Restaurant wifi", "Restore the backup"];
    // Longer than the index's own prefixes (two and three letters): every word it begins, in any
    // case, with other words and exclusions, in phrases.
    assert_eq!(found(&app, &agent, "rest*").await, all_rest);
    assert_eq!(found(&app, &agent, "RESTA*").await, ["Restart loop", "Restaurant wifi"]);
    assert_eq!(found(&app, &agent, "restar*").await, ["Restart loop"], "restart and restarting");
    assert_eq!(found(&app, &agent, "rest* -resto*").await, ["Rest of the order", "Restart loop", "Restaurant wifi"]);
    assert_eq!(found(&app, &agent, "\"keeps resta\"*").await, ["Restart loop"]);
    assert_eq!(found(&app, &agent, "\"the rest\"*").await, ["Rest of the order", "Restaurant wifi"]);
    assert!(found(&app, &agent, "restx*").await.is_empty());
    assert_eq!(found(&app, &agent, "résu*").await, ["Résumé upload"]);
    // Highlights mark the words the prefix stood for.
    let hit = &search(&app, &agent, "resto*").await["items"][0];
    assert_eq!(hit["highlight"]["subject"], "<mark>Restore</mark> the backup");

    // A prefix standing for more words than are looked up is still every one of them.
    let many = (0..40).map(|i| format!("zorblax{i:02}")).collect::<Vec<_>>().join(" ");
    app.post("/api/tickets", &agent, json!({ "subject": "Many words", "description": many }), 201).await;
    app.post("/api/tickets", &agent, json!({ "subject": "One word", "description": "zorblax39" }), 201).await;
    assert_eq!(found(&app, &agent, "zorbla*").await, ["Many words", "One word"]);
    assert_eq!(found(&app, &agent, "zorbla* -\"zorblax00\"").await, ["One word"]);

    // A customer's long prefix reads what they may read only: never a word of an internal note.
    let mine =
        app.post("/api/tickets", &alice, json!({ "subject": "Keyboard", "description": "keys stick" }), 201).await;
    let id = mine["id"].as_str().unwrap();
    let note = json!({ "content": "quietly replacing under warranty", "internal": true });
    app.post(&format!("/api/tickets/{id}/comments"), &agent, note, 201).await;
    assert!(found(&app, &alice, "quie*").await.is_empty(), "an internal note matched for a customer");
    assert!(found(&app, &alice, "keyb* warra*").await.is_empty());
    assert_eq!(found(&app, &agent, "quie*").await, ["Keyboard"]);
    assert!(found(&app, &alice, "rest*").await.is_empty(), "others' tickets");
}
