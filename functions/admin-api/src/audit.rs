//! `GET /v1/audit`: the audit log read back, newest first, a page at a time across the
//! days it is partitioned by.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use crate::{
    error::ApiError,
    ports::AuditLog,
    request::{decode_token, encode_token, ApiRequest, ApiResponse},
};

/// The most days one listing walks back over.
pub const MAX_DAYS: i64 = 31;
/// Days walked back when `since` is not given.
pub const DEFAULT_DAYS: i64 = 7;

fn date(field: &str, text: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid(
            field,
            format!("{field} must be a date YYYY-MM-DD, not {text:?}"),
        )
    })
}

/// Where a listing goes on: the day and the last row key returned of it (none: the day
/// from its newest row).
fn cursor(token: &str) -> Option<(NaiveDate, Option<String>)> {
    let (day, key) = token.split_once('|')?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some((day, (!key.is_empty()).then(|| key.to_owned())))
}

pub async fn list<A: AuditLog>(
    log: &A,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let today = now.date_naive();
    let until = request
        .query("until")
        .map(|t| date("until", t))
        .transpose()?
        .unwrap_or(today);
    let since = request
        .query("since")
        .map(|t| date("since", t))
        .transpose()?
        .unwrap_or(until - chrono::Duration::days(DEFAULT_DAYS - 1));
    if since > until {
        return Err(ApiError::invalid("since", "since must not be after until"));
    }
    if (until - since).num_days() >= MAX_DAYS {
        return Err(ApiError::invalid(
            "since",
            format!("a listing covers at most {MAX_DAYS} days"),
        ));
    }
    let limit = request.query_number("limit", 50, 1..=100)?;
    let (mut day, mut after) = match decode_token(request.query("next_token"))? {
        Some(token) => cursor(&token)
            .filter(|(day, _)| (since..=until).contains(day))
            .ok_or_else(|| {
                ApiError::invalid(
                    "next_token",
                    "next_token is not a token of this listing (same since and until)",
                )
            })?,
        None => (until, None),
    };
    let mut entries = Vec::new();
    let next = loop {
        let page = log
            .day(day, limit - entries.len(), after.as_deref())
            .await?;
        entries.extend(page.items);
        if let Some(key) = page.next {
            if entries.len() == limit {
                break Some(format!("{day}|{key}"));
            }
            after = Some(key);
            continue;
        }
        let Some(previous) = day.pred_opt().filter(|d| *d >= since) else {
            break None;
        };
        if entries.len() == limit {
            // Earlier days may hold more; the next page starts with the previous day.
            break Some(format!("{previous}|"));
        }
        (day, after) = (previous, None);
    };
    Ok(ApiResponse::ok(json!({
        "entries": entries,
        "since": since.to_string(),
        "until": until.to_string(),
        "next_token": next.as_deref().map(encode_token),
    })))
}
