//! `GET /v1/audit`: the audit log read back, newest first, a page at a time across the
//! days it is partitioned by.

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
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

/// The first and last days a listing may name.
const EARLIEST: (i32, u32, u32) = (1970, 1, 1);
const LATEST: (i32, u32, u32) = (9999, 12, 31);

fn date(field: &str, text: &str) -> Result<NaiveDate, ApiError> {
    let bounds = |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| (bounds(EARLIEST)..=bounds(LATEST)).contains(d))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{field} must be a date YYYY-MM-DD from 1970 to 9999, not {text:?}"),
            )
        })
}

/// Where a listing goes on: its window, the day, and the last row key returned of it
/// (none: the day from its newest row). The window rides in the token so a listing
/// that pages across midnight keeps the days it began with.
struct Cursor {
    since: NaiveDate,
    until: NaiveDate,
    day: NaiveDate,
    after: Option<String>,
}

impl Cursor {
    fn encode(&self) -> String {
        encode_token(&format!(
            "{}|{}|{}|{}",
            self.since,
            self.until,
            self.day,
            self.after.as_deref().unwrap_or_default()
        ))
    }

    fn decode(token: &str) -> Option<Self> {
        let mut parts = token.splitn(4, '|');
        let mut day = || NaiveDate::parse_from_str(parts.next()?, "%Y-%m-%d").ok();
        let (since, until, at) = (day()?, day()?, day()?);
        let after = parts.next()?;
        ((since..=until).contains(&at)).then(|| Self {
            since,
            until,
            day: at,
            after: (!after.is_empty()).then(|| after.to_owned()),
        })
    }
}

pub async fn list<A: AuditLog>(
    log: &A,
    request: &ApiRequest,
    now: DateTime<Utc>,
) -> Result<ApiResponse, ApiError> {
    let given_until = request
        .query("until")
        .map(|t| date("until", t))
        .transpose()?;
    let given_since = request
        .query("since")
        .map(|t| date("since", t))
        .transpose()?;
    let limit = request.query_number("limit", 50, 1..=100)?;
    let cursor = match decode_token(request.query("next_token"))? {
        Some(token) => {
            let cursor = Cursor::decode(&token)
                .filter(|c| given_since.is_none_or(|s| s == c.since))
                .filter(|c| given_until.is_none_or(|u| u == c.until))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "next_token",
                        "next_token is not a token of this listing (same since and until)",
                    )
                })?;
            Some(cursor)
        }
        None => None,
    };
    let (since, until) = match &cursor {
        Some(c) => (c.since, c.until),
        None => {
            let until = given_until.unwrap_or_else(|| now.date_naive());
            let since = match given_since {
                Some(since) => since,
                None => until
                    .checked_sub_days(chrono::Days::new(DEFAULT_DAYS as u64 - 1))
                    .filter(|d| d.year() >= EARLIEST.0)
                    .unwrap_or(until),
            };
            (since, until)
        }
    };
    if since > until {
        return Err(ApiError::invalid("since", "since must not be after until"));
    }
    if (until - since).num_days() >= MAX_DAYS {
        return Err(ApiError::invalid(
            "since",
            format!("a listing covers at most {MAX_DAYS} days"),
        ));
    }
    let (mut day, mut after) = match cursor {
        Some(c) => (c.day, c.after),
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
                break Some(Cursor {
                    since,
                    until,
                    day,
                    after: Some(key),
                });
            }
            after = Some(key);
            continue;
        }
        let Some(previous) = day.pred_opt().filter(|d| *d >= since) else {
            break None;
        };
        if entries.len() == limit {
            // Earlier days may hold more; the next page starts with the previous day.
            break Some(Cursor {
                since,
                until,
                day: previous,
                after: None,
            });
        }
        (day, after) = (previous, None);
    };
    Ok(ApiResponse::ok(json!({
        "entries": entries,
        "since": since.to_string(),
        "until": until.to_string(),
        "next_token": next.as_ref().map(Cursor::encode),
    })))
}
