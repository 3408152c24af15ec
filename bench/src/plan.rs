//! The helpdesk every scale run writes, the same whichever way it is seeded: what ticket `i` is,
//! who opens it for whom, and its three comments, from a deterministic generator.
use serde_json::{Value, json};

/// A word in about 1% of tickets (the description of every hundredth), and one in none.
pub const RARE_WORD: &str = "zeppelin";
pub const ABSENT_WORD: &str = "quetzalcoatl";

pub const WORDS: &[&str] = &[
    "printer",
    "laptop",
    "screen",
    "password",
    "reset",
    "account",
    "email",
    "outlook",
    "vpn",
    "network",
    "wifi",
    "router",
    "server",
    "login",
    "error",
    "crash",
    "slow",
    "update",
    "install",
    "license",
    "office",
    "excel",
    "word",
    "teams",
    "meeting",
    "calendar",
    "phone",
    "mobile",
    "app",
    "browser",
    "chrome",
    "firefox",
    "page",
    "loading",
    "timeout",
    "access",
    "denied",
    "permission",
    "folder",
    "share",
    "drive",
    "backup",
    "restore",
    "file",
    "missing",
    "deleted",
    "sync",
    "invoice",
    "billing",
    "payment",
    "refund",
    "order",
    "shipping",
    "delivery",
    "tracking",
    "address",
    "change",
    "cancel",
    "subscription",
    "plan",
    "upgrade",
    "downgrade",
    "trial",
    "expired",
    "renewal",
    "keyboard",
    "mouse",
    "monitor",
    "cable",
    "dock",
    "battery",
    "charger",
    "headset",
    "camera",
    "microphone",
    "sound",
    "audio",
    "video",
    "blurry",
    "flicker",
    "black",
    "blue",
    "frozen",
    "restart",
    "reboot",
    "boot",
    "disk",
    "full",
    "space",
    "memory",
    "cpu",
    "fan",
    "noise",
    "hot",
    "power",
    "outage",
    "down",
    "intermittent",
    "again",
    "urgent",
    "please",
    "help",
    "today",
    "yesterday",
    "morning",
    "since",
    "after",
    "before",
    "working",
    "broken",
    "new",
    "old",
    "user",
    "customer",
    "team",
    "manager",
    "request",
    "ticket",
    "issue",
    "problem",
    "question",
    "cannot",
    "unable",
    "fails",
    "failed",
    "works",
    "sometimes",
    "always",
    "never",
    "still",
    "tried",
    "steps",
    "attached",
    "screenshot",
    "log",
    "message",
    "code",
    "version",
    "windows",
    "mac",
    "linux",
    "android",
    "iphone",
    "tablet",
    "portal",
    "dashboard",
    "report",
    "export",
    "import",
    "csv",
    "pdf",
    "upload",
    "download",
    "link",
    "invite",
    "signup",
    "verify",
    "token",
    "two",
    "factor",
    "authentication",
    "locked",
    "unlock",
    "sso",
    "saml",
    "api",
    "integration",
    "webhook",
    "database",
    "query",
    "latency",
    "spike",
    "alert",
    "monitoring",
    "disk",
    "ssl",
    "certificate",
    "dns",
    "domain",
    "firewall",
    "proxy",
    "port",
    "blocked",
    "spam",
    "phishing",
    "virus",
    "scan",
    "quarantine",
    "policy",
    "compliance",
    "audit",
    "training",
    "onboarding",
    "offboarding",
    "hardware",
    "software",
];

/// A small deterministic generator, so every run writes the same helpdesk.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A word, the common ones far more often (roughly Zipf: index = n * u^2).
    pub fn word(&mut self) -> &'static str {
        let u = (self.next() % 10_000) as f64 / 10_000.0;
        WORDS[((u * u) * WORDS.len() as f64) as usize]
    }

    pub fn text(&mut self, min: usize, max: usize) -> String {
        let n = min + self.below(max - min + 1);
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }

    pub fn pick<'a>(&mut self, weighted: &[(&'a str, usize)]) -> &'a str {
        let total: usize = weighted.iter().map(|(_, w)| w).sum();
        let mut at = self.below(total);
        for (v, w) in weighted {
            if at < *w {
                return v;
            }
            at -= w;
        }
        weighted[0].0
    }
}

/// Who opens ticket `i`, for whom, and how: `requester` and `agent` index the customers and
/// agents, `body` is the `POST /api/tickets` body.
pub struct TicketPlan {
    pub requester: usize,
    pub agent: usize,
    pub body: Value,
}

/// `customers` and `agents` are the accounts' ids.
pub fn ticket_plan(i: usize, customers: &[String], agents: &[String]) -> TicketPlan {
    let mut rng = Rng::new(i as u64 + 1);
    let requester = rng.below(customers.len());
    let agent = rng.below(agents.len());
    // Nine in ten are assigned; the agent who opens it answers it either way.
    let assigned = rng.below(10) != 0;
    let mut description = rng.text(20, 60);
    if i.is_multiple_of(100) {
        description.push(' ');
        description.push_str(RARE_WORD);
    }
    let mut body = json!({
        "subject": rng.text(3, 8),
        "description": description,
        "requester_id": customers[requester],
        "status": rng.pick(&[("open", 40), ("in_progress", 20), ("pending", 15), ("resolved", 15), ("closed", 10)]),
        "priority": rng.pick(&[("low", 30), ("medium", 45), ("high", 20), ("urgent", 5)]),
        "source": rng.pick(&[("web", 50), ("email", 30), ("api", 15), ("phone", 5)]),
    });
    if assigned {
        body["assignee_id"] = json!(agents[agent]);
    }
    TicketPlan { requester, agent, body }
}

/// Comments per ticket.
pub const COMMENTS: usize = 3;

/// Who writes a ticket's comment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Author {
    Requester,
    Agent,
}

/// Comment `k` of the helpdesk (`k / COMMENTS` is its ticket): the customer writes, the agent
/// answers, the agent leaves an internal note. Returns the `POST .../comments` body.
pub fn comment_plan(k: usize) -> (Author, Value) {
    let mut rng = Rng::new(2_000_000 + k as u64);
    match k % COMMENTS {
        0 => (Author::Requester, json!({ "content": rng.text(10, 40) })),
        1 => (Author::Agent, json!({ "content": rng.text(10, 40) })),
        _ => (Author::Agent, json!({ "content": rng.text(5, 25), "internal": true })),
    }
}

/// Article `i` of the KB, as the `POST /api/kb/articles` body.
pub fn article_plan(i: usize) -> Value {
    let mut rng = Rng::new(1_000_000 + i as u64);
    json!({
        "title": rng.text(3, 7),
        "body": rng.text(80, 200),
        "tags": [rng.word(), rng.word()],
        "status": "published",
    })
}
