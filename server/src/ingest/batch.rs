//! `POST /api/integrations/webhook/batch`: a JSON array or a CSV file of flexible-mapping items.
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{
    sources::flexible,
    upsert::{self, Origin},
};
use crate::{
    error::{Error, ErrorBody, Result},
    ingest::Context,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    pub created_count: usize,
    pub updated_count: usize,
    pub failed_count: usize,
    pub results: Vec<ItemResult>,
}

/// One item's fate, in input order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResult {
    /// The item's place in the batch, from 0.
    pub index: usize,
    /// For CSV: the line of the file the row starts on (the header is line 1).
    pub line: Option<usize>,
    /// created, updated or failed.
    pub status: &'static str,
    pub ticket_id: Option<String>,
    /// The ticket's number (`#1042`).
    pub ticket_number: Option<i64>,
    /// The item's external id, also when it failed, so the sender can tell which one.
    pub external_id: Option<String>,
    pub error: Option<ErrorBody>,
}

/// One item of a batch, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The CSV line the row starts on; `None` for JSON.
    pub line: Option<usize>,
    pub value: Value,
}

/// The items of a batch body: a JSON array, or CSV with a header row when `csv` is true.
pub fn items(body: &[u8], csv: bool, max: usize) -> Result<Vec<Item>> {
    let items: Vec<Item> = if csv {
        let text = std::str::from_utf8(body).map_err(|_| Error::bad_request("CSV must be UTF-8"))?;
        csv_records(text)?.into_iter().map(|(line, value)| Item { line: Some(line), value }).collect()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items.into_iter().map(|value| Item { line: None, value }).collect(),
            Ok(_) => return Err(Error::validation("body", "must be a JSON array of items")),
            Err(e) => return Err(Error::bad_request(format!("malformed JSON: {e}"))),
        }
    };
    if items.len() > max {
        return Err(Error::PayloadTooLarge(format!("a batch holds at most {max} items; this one has {}", items.len())));
    }
    Ok(items)
}

/// Ingests every item; failures are reported per item and do not stop the others.
pub async fn run(cx: Context<'_>, origin: &Origin<'_>, items: Vec<Item>) -> BatchResult {
    let mut out =
        BatchResult { created_count: 0, updated_count: 0, failed_count: 0, results: Vec::with_capacity(items.len()) };
    for (index, Item { line, value: item }) in items.into_iter().enumerate() {
        let item_origin = Origin { raw: &item, delivery_id: None, ..*origin };
        let result = match flexible::normalise(&item) {
            Ok(n) => upsert::ingest(cx, &item_origin, n).await,
            Err(e) => Err(e),
        };
        out.results.push(match result {
            Ok(o) => {
                if o.created {
                    out.created_count += 1
                } else {
                    out.updated_count += 1
                }
                ItemResult {
                    index,
                    line,
                    status: if o.created { "created" } else { "updated" },
                    ticket_id: Some(o.ticket.id),
                    ticket_number: Some(o.ticket.number),
                    external_id: o.ticket.external_id,
                    error: None,
                }
            }
            Err(e) => {
                out.failed_count += 1;
                ItemResult {
                    index,
                    line,
                    status: "failed",
                    ticket_id: None,
                    ticket_number: None,
                    external_id: flexible::external_id(&item),
                    error: Some(e.body()),
                }
            }
        });
    }
    out
}

/// CSV (RFC 4180: quoted fields, `""` escapes, newlines inside quotes) with a header row,
/// as one JSON object per row with the line it starts on; empty cells are left out.
pub fn csv_records(text: &str) -> Result<Vec<(usize, Value)>> {
    let mut rows = parse_csv(text.strip_prefix('\u{feff}').unwrap_or(text))?.into_iter();
    let header: Vec<String> = rows
        .next()
        .ok_or_else(|| Error::validation("body", "CSV needs a header row"))?
        .1
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    Ok(rows
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()))
        .map(|(line, r)| {
            let obj: Map<String, Value> = header
                .iter()
                .zip(r)
                .filter(|(h, c)| !h.is_empty() && !c.trim().is_empty())
                .map(|(h, c)| (h.clone(), Value::String(c)))
                .collect();
            (line, Value::Object(obj))
        })
        .collect())
}

/// The rows of `text`, each with the line it starts on (from 1).
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    let (mut line, mut row_line) = (1, 1);
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push((row_line, std::mem::take(&mut row)));
                row_line = line;
            }
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err(Error::validation("body", "CSV has an unterminated quoted field"));
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push((row_line, row));
    }
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_with_quotes_and_newlines() {
        let text =
            "title,description,priority\r\n\"Printer, 2nd floor\",\"says \"\"hi\"\"\nand dies\",high\n,no title,\n\n";
        let items = csv_records(text).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0],
            (2, json!({"title": "Printer, 2nd floor", "description": "says \"hi\"\nand dies", "priority": "high"}))
        );
        // The quoted newline above makes this row start on line 4.
        assert_eq!(items[1], (4, json!({"description": "no title"})));
        assert!(csv_records("a,\"b").is_err());
    }

    #[test]
    fn json_items_and_limits() {
        assert_eq!(items(b"[{}, {}]", false, 2).unwrap().len(), 2);
        assert!(matches!(items(b"[{}, {}, {}]", false, 2), Err(Error::PayloadTooLarge(_))));
        assert!(matches!(items(b"{}", false, 2), Err(Error::Validation { .. })));
        assert!(matches!(items(b"[", false, 2), Err(Error::BadRequest(_))));
    }
}
