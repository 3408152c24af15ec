//! Ticket numbers as people type them (`#1042`); they are handed out by
//! [`crate::db::TicketNumbers`].

/// `#1042` or `1042` as a ticket number.
pub fn parse(text: &str) -> Option<i64> {
    let digits = text.trim().strip_prefix('#').unwrap_or(text.trim());
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn numbers_people_type() {
        assert_eq!(parse("#1042"), Some(1042));
        assert_eq!(parse(" 1042 "), Some(1042));
        assert_eq!(parse("#"), None);
        assert_eq!(parse("#10a"), None);
        assert_eq!(parse("printer 1042"), None);
        assert_eq!(parse("-1"), None);
    }
}
