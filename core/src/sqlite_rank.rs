//! `ticketwire_rank(fts_table, weight, …)`: the FTS5 ranking function ticket searches use on
//! SQLite, registered on every pooled connection ([`register`]).
//!
//! Why not FTS5's own `bm25`: to weigh each searched word by how rare it is, `bm25` first counts
//! every document that holds it, by reading the word's whole list in the index, on every search
//! and again for each ticket looked up by rowid. At a million tickets that count is most of a
//! search's time (≈ 20 ms for a word in every ticket, a minute for a customer's search that looks
//! up each of their tickets). This function scores what the row itself holds: per searched term
//! and column, BM25's saturating term frequency with length normalisation, times the column's
//! weight, summed. It leaves out BM25's rarity factor, as PostgreSQL's `ts_rank` does: every
//! ranked ticket holds every searched term (they are ANDed), so rarity would only reweigh the
//! terms against each other. Higher is better.
#![allow(unsafe_code)]

use std::{
    ffi::{c_int, c_void},
    ptr::{self, NonNull},
};

use libsqlite3_sys as ffi;

/// BM25's usual constants: how fast repeated hits saturate, how much length counts.
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Columns a table ranked here may have; more are scored as the last weight given says.
const MAX_COLUMNS: usize = 8;

/// Registers `ticketwire_rank` with FTS5 on `db`.
pub fn register(db: NonNull<ffi::sqlite3>) -> Result<(), String> {
    // SAFETY: `db` is an open connection that the caller holds exclusively (sqlx's locked
    // handle). `fts5(?1)` is FTS5's documented way to hand out its API: it writes the pointer
    // into the bound "fts5_api_ptr" pointer; the statement is finalised before we return.
    unsafe {
        let db = db.as_ptr();
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        if ffi::sqlite3_prepare_v2(db, c"SELECT fts5(?1)".as_ptr(), -1, &mut stmt, ptr::null_mut()) != ffi::SQLITE_OK {
            return Err("FTS5 is not available".into());
        }
        let mut api: *mut ffi::fts5_api = ptr::null_mut();
        ffi::sqlite3_bind_pointer(stmt, 1, (&raw mut api).cast::<c_void>(), c"fts5_api_ptr".as_ptr(), None);
        ffi::sqlite3_step(stmt);
        ffi::sqlite3_finalize(stmt);
        let create = match api.as_ref() {
            Some(a) if a.iVersion >= 2 => a.xCreateFunction,
            _ => None,
        };
        let Some(create) = create else {
            return Err("FTS5 gave no API to register a ranking function with".into());
        };
        match create(api, c"ticketwire_rank".as_ptr(), ptr::null_mut(), Some(rank), None) {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(format!("registering ticketwire_rank failed (SQLite error {rc})")),
        }
    }
}

/// The FTS5 callback: scores the current row, or reports FTS5's error code.
unsafe extern "C" fn rank(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    ctx: *mut ffi::sqlite3_context,
    n_val: c_int,
    values: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: FTS5 calls this with a valid API table, context and `n_val` argument values, for
    // the duration of the call.
    unsafe {
        let weights: Vec<f64> = (0..n_val.max(0) as usize).map(|i| ffi::sqlite3_value_double(*values.add(i))).collect();
        match score(&*api, fts, &weights) {
            Ok(s) => ffi::sqlite3_result_double(ctx, s),
            Err(rc) => ffi::sqlite3_result_error_code(ctx, rc),
        }
    }
}

/// The row's score (see the module). Errors are SQLite result codes.
///
/// # Safety
/// `api` and `fts` as FTS5 passed them to [`rank`], during that call.
unsafe fn score(api: &ffi::Fts5ExtensionApi, fts: *mut ffi::Fts5Context, weights: &[f64]) -> Result<f64, c_int> {
    let ok = |rc: c_int| if rc == ffi::SQLITE_OK { Ok(()) } else { Err(rc) };
    let (Some(columns), Some(phrases), Some(rows), Some(total), Some(size), Some(insts), Some(inst)) = (
        api.xColumnCount,
        api.xPhraseCount,
        api.xRowCount,
        api.xColumnTotalSize,
        api.xColumnSize,
        api.xInstCount,
        api.xInst,
    ) else {
        return Err(ffi::SQLITE_MISUSE);
    };
    // SAFETY: (all calls below) FTS5's documented extension API on the context it gave us.
    unsafe {
        let n_col = (columns(fts).max(0) as usize).min(MAX_COLUMNS);
        let n_phrase = phrases(fts).max(0) as usize;
        let mut n_rows: i64 = 0;
        ok(rows(fts, &mut n_rows))?;
        let mut hits = vec![0u32; n_phrase * n_col];
        let mut n_inst: c_int = 0;
        ok(insts(fts, &mut n_inst))?;
        for i in 0..n_inst {
            let (mut phrase, mut col, mut offset) = (0, 0, 0);
            ok(inst(fts, i, &mut phrase, &mut col, &mut offset))?;
            let (p, c) = (phrase.max(0) as usize, col.max(0) as usize);
            if p < n_phrase && c < n_col {
                hits[p * n_col + c] += 1;
            }
        }
        let mut out = 0.0;
        for c in 0..n_col {
            let weight = weights.get(c).or(weights.last()).copied().unwrap_or(1.0);
            if weight == 0.0 {
                continue;
            }
            let (mut all_tokens, mut tokens): (i64, c_int) = (0, 0);
            ok(total(fts, c as c_int, &mut all_tokens))?;
            ok(size(fts, c as c_int, &mut tokens))?;
            let average = if n_rows > 0 { (all_tokens as f64 / n_rows as f64).max(1.0) } else { 1.0 };
            let norm = K1 * (1.0 - B + B * f64::from(tokens) / average);
            for p in 0..n_phrase {
                let tf = f64::from(hits[p * n_col + c]);
                if tf > 0.0 {
                    out += weight * tf * (K1 + 1.0) / (tf + norm);
                }
            }
        }
        Ok(out)
    }
}
