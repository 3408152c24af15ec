// Minimal socket.io 4.8 peer for ticketwire's benchmark (scenarios 1 and 2).
// Env: PEER_JWT_SECRET (HS256), PEER_LISTEN (host:port, port 0 = any).
// Socket.IO auth: {"token": "<jwt>", "rooms": ["tickets"]}.
// POST /broadcast -> emits a ~1 KB ticket JSON to room "tickets", answers {"id","version"} after the emit.
"use strict";
const http = require("http");
const jwt = require("jsonwebtoken");
const { Server } = require("socket.io");

const secret = process.env.PEER_JWT_SECRET;
if (!secret) { console.error("PEER_JWT_SECRET is required"); process.exit(2); }
const [host, port] = (process.env.PEER_LISTEN || "127.0.0.1:0").split(":");

let version = 0;
const description = "x".repeat(560);
function ticket(v) {
  const now = new Date().toISOString();
  return {
    id: "00000000-0000-7000-8000-000000000000", subject: "Printer on fire, third floor", description,
    status: "open", priority: "normal", category: "general", tags: ["bench"], source: "api",
    external_id: null, requester_id: "00000000-0000-7000-8000-000000000001", requester_email: "requester@example.com",
    assignee_id: null, metadata: {}, classification: null, created_at: now, updated_at: now, resolved_at: null, version: v,
  };
}

const server = http.createServer((req, res) => {
  if (req.method === "POST" && req.url.startsWith("/broadcast")) {
    req.resume();
    req.on("end", () => {
      version += 1;
      io.to("tickets").emit("ticket.update", { event_id: version, action: "updated", data: ticket(version) });
      const body = JSON.stringify({ id: "00000000-0000-7000-8000-000000000000", version });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
    });
    return;
  }
  if (req.url === "/health") { res.writeHead(200); res.end("ok"); return; }
  res.writeHead(404); res.end();
});

const io = new Server(server, { transports: ["websocket", "polling"], serveClient: false });
io.use((socket, next) => {
  const auth = socket.handshake.auth || {};
  try {
    jwt.verify(auth.token || "", secret, { algorithms: ["HS256"] });
  } catch (_) {
    return next(new Error("unauthorized"));
  }
  const rooms = Array.isArray(auth.rooms) ? auth.rooms.filter((r) => typeof r === "string").slice(0, 200) : [];
  socket.join(rooms);
  next();
});

server.listen(Number(port), host, () => {
  const a = server.address();
  console.log(`node peer listening on http://${a.address}:${a.port}`);
});
