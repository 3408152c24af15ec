//! Connection memory: what a socket keeps of the HTTP request that opened it.
use axum::{
    extract::{OriginalUri, Request},
    http::{HeaderMap, HeaderName, HeaderValue, Uri},
};

/// socketioxide keeps each connection's request head (`req_parts`) for the socket's lifetime.
/// hyper parses header values and the URI as slices of the connection's read buffer (8–16 KiB),
/// so keeping them (or axum's `OriginalUri`) keeps the whole buffer: 16 KiB, nearly half of an
/// idle connection's memory (valgrind massif at 1,000 connections). Copied into allocations of
/// their own, the buffer is freed after the upgrade.
pub async fn detach_request_head(mut req: Request) -> Request {
    if !req.uri().path().starts_with("/socket.io") {
        return req;
    }
    let borrowed = std::mem::take(req.headers_mut());
    let mut owned = HeaderMap::with_capacity(borrowed.len());
    for (name, value) in &borrowed {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
        {
            owned.append(name, value);
        }
    }
    *req.headers_mut() = owned;
    if let Ok(uri) = Uri::try_from(req.uri().to_string()) {
        // axum's router keeps a clone of the original URI too, sharing the same buffer.
        if let Some(original) = req.extensions_mut().get_mut::<OriginalUri>() {
            original.0 = uri.clone();
        }
        *req.uri_mut() = uri;
    }
    req
}
