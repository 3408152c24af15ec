//! The search language, read once and written out for each database, and the highlights made
//! from it (see the module above for the language itself).
use crate::error::{Error, Result};

/// Longest search, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Most words in one search (those of phrases and exclusions included).
pub const MAX_WORDS: usize = 32;
/// Longest word, in characters.
pub const MAX_WORD_CHARS: usize = 100;
/// Shortest prefix: shorter ones would read a large part of the index.
pub const MIN_PREFIX_CHARS: usize = 2;

/// One term of a search: a word (one token) or a phrase, its last word a prefix or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub words: Vec<String>,
    pub prefix: bool,
    pub excluded: bool,
    /// The indexed words a prefix stands for, when they were looked up (SQLite, see
    /// `sqlite::expand_prefixes`): the term is then written out as each of them. Empty: the index
    /// matches the prefix itself.
    pub stands_for: Vec<String>,
}

/// A parsed search: at least one term that is not excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub terms: Vec<Term>,
}

/// The words of `text` as the index cuts them: runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.char_indices()
        .filter(|(i, c)| c.is_alphanumeric() && !text[..*i].chars().next_back().is_some_and(char::is_alphanumeric))
        .map(move |(start, _)| {
            let len = text[start..].find(|c: char| !c.is_alphanumeric()).unwrap_or(text.len() - start);
            (start, &text[start..start + len])
        })
}

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::validation("q", message)
}

impl SearchQuery {
    /// Reads a search. `Ok(None)`: it holds no word at all, so nothing can match it.
    pub fn parse(text: &str) -> Result<Option<Self>> {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(invalid(format!("a search has at most {MAX_QUERY_CHARS} characters")));
        }
        let chars: Vec<char> = text.chars().collect();
        let mut terms = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            let excluded = chars[i] == '-' && chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
            if excluded {
                i += 1;
            }
            let (body, prefix): (String, bool) = if chars[i] == '"' {
                let start = i + 1;
                let end = chars[start..].iter().position(|&c| c == '"').map_or(chars.len(), |p| start + p);
                i = (end + 1).min(chars.len());
                let prefix = chars.get(i) == Some(&'*');
                if prefix {
                    i += 1;
                }
                (chars[start..end].iter().collect(), prefix)
            } else {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
                    i += 1;
                }
                (chars[start..i].iter().collect(), chars[i - 1] == '*')
            };
            let words: Vec<String> = words(&body).map(|(_, w)| w.to_string()).collect();
            if !words.is_empty() {
                terms.push(Term { words, prefix, excluded, stands_for: Vec::new() });
            }
        }
        if terms.is_empty() {
            return Ok(None);
        }
        if terms.iter().map(|t| t.words.len()).sum::<usize>() > MAX_WORDS {
            return Err(invalid(format!("a search has at most {MAX_WORDS} words")));
        }
        if terms.iter().flat_map(|t| &t.words).any(|w| w.chars().count() > MAX_WORD_CHARS) {
            return Err(invalid(format!("a word has at most {MAX_WORD_CHARS} characters")));
        }
        let short_prefix = |t: &Term| t.prefix && t.words.last().is_some_and(|w| w.chars().count() < MIN_PREFIX_CHARS);
        if terms.iter().any(short_prefix) {
            return Err(invalid(format!("a prefix (word*) has at least {MIN_PREFIX_CHARS} letters")));
        }
        if terms.iter().all(|t| t.excluded) {
            return Err(invalid("a search needs a word to look for, not only words to exclude"));
        }
        Ok(Some(Self { terms }))
    }

    fn wanted(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| !t.excluded)
    }

    fn excluded(&self) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(|t| t.excluded)
    }

    /// The FTS5 `MATCH` expression, over `columns` only when given. Every word is quoted, so
    /// FTS5 reads none as an operator.
    pub fn fts5(&self, columns: Option<&[&str]>) -> String {
        let term = |t: &Term| match t.words.split_last() {
            Some((_, before)) if t.prefix && !t.stands_for.is_empty() => {
                let each: Vec<String> = t
                    .stands_for
                    .iter()
                    .map(|w| {
                        let words: Vec<&str> = before.iter().map(String::as_str).chain([w.as_str()]).collect();
                        format!("\"{}\"", words.join(" ").replace('"', "\"\""))
                    })
                    .collect();
                format!("({})", each.join(" OR "))
            }
            _ => format!("\"{}\"{}", t.words.join(" "), if t.prefix { " *" } else { "" }),
        };
        let wanted: Vec<String> = self.wanted().map(term).collect();
        let mut expr = format!("({})", wanted.join(" AND "));
        for t in self.excluded() {
            expr = format!("{expr} NOT {}", term(t));
        }
        match columns {
            Some(columns) => format!("{{{}}} : ({expr})", columns.join(" ")),
            None => expr,
        }
    }

    /// The `to_tsquery('simple', …)` text, each word restricted to the weight labels `weights`
    /// when not empty. Words hold only letters and digits, so quoting them is enough.
    pub fn tsquery(&self, weights: &str) -> String {
        let term = |t: &Term| {
            let n = t.words.len();
            let words: Vec<String> = t
                .words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let label = format!("{}{weights}", if t.prefix && i + 1 == n { "*" } else { "" });
                    if label.is_empty() { format!("'{w}'") } else { format!("'{w}':{label}") }
                })
                .collect();
            let phrase = if n > 1 { format!("({})", words.join(" <-> ")) } else { words.join("") };
            if t.excluded { format!("!{phrase}") } else { phrase }
        };
        self.terms.iter().map(term).collect::<Vec<_>>().join(" & ")
    }

    /// Which words of `text` this search matches (excluded terms mark nothing), by position in
    /// [`words`].
    fn marks(&self, text: &str) -> (Vec<(usize, usize)>, Vec<bool>) {
        let spans: Vec<(usize, usize)> = words(text).map(|(s, w)| (s, s + w.len())).collect();
        let lower: Vec<String> = spans.iter().map(|&(s, e)| text[s..e].to_lowercase()).collect();
        let mut marked = vec![false; spans.len()];
        for t in self.wanted() {
            let want: Vec<String> = t.words.iter().map(|w| w.to_lowercase()).collect();
            let n = want.len();
            for i in 0..lower.len().saturating_sub(n - 1) {
                let hit = (0..n).all(|k| {
                    let (doc, w) = (&lower[i + k], &want[k]);
                    if t.prefix && k + 1 == n { doc.starts_with(w.as_str()) } else { doc == w }
                });
                if hit {
                    marked[i..i + n].iter_mut().for_each(|m| *m = true);
                }
            }
        }
        (spans, marked)
    }

    /// All of `text` as HTML: escaped, each matched word in `<mark>…</mark>`.
    pub fn highlight(&self, text: &str) -> String {
        let (spans, marked) = self.marks(text);
        render(text, 0, text.len(), &spans, &marked)
    }

    /// A passage of `text` around its first match, as HTML like [`Self::highlight`], with `…`
    /// where cut; `None` when nothing in it matches.
    pub fn snippet(&self, text: &str) -> Option<String> {
        let (spans, marked) = self.marks(text);
        let first = marked.iter().position(|&m| m)?;
        Some(passage(text, &spans, &marked, first))
    }
}

/// About how long a snippet is, in characters.
const SNIPPET_CHARS: usize = 200;
/// Words shown before the first match.
const SNIPPET_LEAD_WORDS: usize = 6;

fn passage(text: &str, spans: &[(usize, usize)], marked: &[bool], first: usize) -> String {
    let start = if first <= SNIPPET_LEAD_WORDS { 0 } else { spans[first - SNIPPET_LEAD_WORDS].0 };
    let budget_end = text[start..].char_indices().nth(SNIPPET_CHARS).map_or(text.len(), |(i, _)| start + i);
    // End on a whole word, and never before the end of the first match.
    let end = if budget_end == text.len() {
        text.len()
    } else {
        spans.iter().map(|&(_, e)| e).filter(|&e| e <= budget_end).max().unwrap_or(budget_end).max(spans[first].1)
    };
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(render(text, start, end, spans, marked).trim());
    if end < text.len() {
        out.push('…');
    }
    out
}

/// `text[start..end]` escaped, with the marked words of it in `<mark>`.
fn render(text: &str, start: usize, end: usize, spans: &[(usize, usize)], marked: &[bool]) -> String {
    let mut out = String::with_capacity(end - start + 16);
    let mut at = start;
    for (&(s, e), _) in spans.iter().zip(marked).filter(|&(&(s, e), &m)| m && s >= start && e <= end) {
        escape_into(&mut out, &text[at..s]);
        out.push_str("<mark>");
        escape_into(&mut out, &text[s..e]);
        out.push_str("</mark>");
        at = e;
    }
    escape_into(&mut out, &text[at..end]);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The start of `text` as a snippet with nothing marked.
pub(super) fn opening(text: &str) -> String {
    let spans: Vec<(usize, usize)> = words(text).map(|(s, w)| (s, s + w.len())).collect();
    if spans.is_empty() {
        return String::new();
    }
    passage(text, &spans, &vec![false; spans.len()], 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::search::sqlite::PUBLIC_TICKET_COLUMNS;

    fn parse(text: &str) -> SearchQuery {
        SearchQuery::parse(text).unwrap().unwrap()
    }

    fn term(words: &[&str], prefix: bool, excluded: bool) -> Term {
        Term { words: words.iter().map(|w| w.to_string()).collect(), prefix, excluded, stands_for: Vec::new() }
    }

    #[test]
    fn the_language() {
        assert_eq!(
            parse(r#"printer "paper jam" -toner -"out of" tray*"#).terms,
            vec![
                term(&["printer"], false, false),
                term(&["paper", "jam"], false, false),
                term(&["toner"], false, true),
                term(&["out", "of"], false, true),
                term(&["tray"], true, false),
            ]
        );
        // Anything but letters and digits separates words; a word so split is a phrase.
        assert_eq!(parse("a.b@example.com").terms, vec![term(&["a", "b", "example", "com"], false, false)]);
        assert_eq!(parse("foo-bar").terms, vec![term(&["foo", "bar"], false, false)]);
        assert_eq!(parse(r#""unterminated phrase"#).terms, vec![term(&["unterminated", "phrase"], false, false)]);
        assert_eq!(parse("\"e mail\"*").terms, vec![term(&["e", "mail"], true, false)]);
        assert_eq!(parse("Café 票").terms, vec![term(&["Café"], false, false), term(&["票"], false, false)]);
        // Nothing to look for at all: no error, nothing matches.
        for empty in ["", "   ", "%", "\"\"", "- -- * ()", "\u{0}"] {
            assert_eq!(SearchQuery::parse(empty).unwrap(), None, "{empty:?}");
        }
    }

    #[test]
    fn what_is_refused() {
        for bad in ["-only -excluded", "a*", "x".repeat(MAX_QUERY_CHARS + 1).as_str(), &"w ".repeat(MAX_WORDS + 1)] {
            let e = SearchQuery::parse(bad).unwrap_err();
            assert!(matches!(e, Error::Validation { ref field, .. } if field == "q"), "{bad:?}: {e}");
        }
        assert!(SearchQuery::parse(&"long".repeat(26)).is_err());
    }

    #[test]
    fn written_out_for_each_database() {
        let q = parse(r#"printer "paper jam" -toner tr*"#);
        assert_eq!(q.fts5(None), r#"("printer" AND "paper jam" AND "tr" *) NOT "toner""#);
        assert_eq!(
            q.fts5(Some(PUBLIC_TICKET_COLUMNS)),
            r#"{subject description public_text} : (("printer" AND "paper jam" AND "tr" *) NOT "toner")"#
        );
        assert_eq!(q.tsquery(""), "'printer' & ('paper' <-> 'jam') & !'toner' & 'tr':*");
        assert_eq!(q.tsquery("ABC"), "'printer':ABC & ('paper':ABC <-> 'jam':ABC) & !'toner':ABC & 'tr':*ABC");
        // Operators typed by a user stay words.
        let q = parse(r#"NOT OR AND NEAR(a b) col:x ' " \ {subject}:y"#);
        assert!(q.terms.iter().flat_map(|t| &t.words).all(|w| w.chars().all(char::is_alphanumeric)));
        assert_eq!(q.terms[0], term(&["NOT"], false, false));
    }

    #[test]
    fn highlights_are_escaped_and_marked() {
        let q = parse(r#"printer "paper jam" -toner fi*"#);
        assert_eq!(
            q.highlight("<b>Printer</b> & paper jam, not a paper; fire! toner"),
            "&lt;b&gt;<mark>Printer</mark>&lt;/b&gt; &amp; <mark>paper</mark> <mark>jam</mark>, not a paper; \
             <mark>fire</mark>! toner"
        );
        assert_eq!(q.highlight("nothing here"), "nothing here");
        assert_eq!(q.snippet("nothing here"), None);
        let long = format!("{} the printer {}", "word ".repeat(100), "more ".repeat(100));
        let snippet = q.snippet(&long).unwrap();
        assert!(snippet.starts_with('…') && snippet.ends_with('…'), "{snippet}");
        assert!(snippet.contains("<mark>printer</mark>") && snippet.chars().count() < 230, "{snippet}");
        assert_eq!(q.snippet("Printer").unwrap(), "<mark>Printer</mark>");
        assert_eq!(opening("  \"quoted\" start"), "&quot;quoted&quot; start");
        assert_eq!(opening("!!!"), "");
    }

    #[test]
    fn a_prefix_written_out_as_the_words_it_stands_for() {
        let mut q = parse(r#"vpn "e mail"* -rest*"#);
        q.terms[1].stands_for = vec!["mailbox".into(), "mails".into()];
        q.terms[2].stands_for = vec!["restart".into(), "restore".into()];
        assert_eq!(q.fts5(None), r#"("vpn" AND ("e mailbox" OR "e mails")) NOT ("restart" OR "restore")"#);
        // A quote in an indexed word stays inside its string.
        q.terms[1].stands_for = vec![r#"ma"il"#.into()];
        assert!(q.fts5(None).contains(r#"("e ma""il")"#));
        // Nothing looked up: the index matches the prefix.
        q.terms[1].stands_for.clear();
        assert!(q.fts5(None).contains(r#""e mail" *"#));
    }
}
