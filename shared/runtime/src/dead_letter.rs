//! The dead-letter store: records a component could not process, with the reason and the
//! original bytes, as one JSON-lines object per batch in S3.

use serde::Serialize;

/// A record that could not be processed, with where it came from and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Short machine-readable code, e.g. `invalid_json`, `rate_limited`.
    pub reason: &'static str,
    pub detail: String,
    pub device_id: Option<String>,
    /// Stream position: `shard:sequence` (the Kinesis event id).
    pub position: String,
    pub received_at: Option<String>,
    /// The original bytes, base64: the stream record, untouched.
    pub original: String,
}

/// `{component}/{yyyy}/{mm}/{dd}/{first position}.jsonl`: one object per batch, listed by
/// day, named after the first letter's stream position so that a retried batch
/// overwrites its object instead of adding a copy.
pub fn object_key(
    component: &str,
    now: chrono::DateTime<chrono::Utc>,
    first_position: &str,
) -> String {
    let name: String = first_position
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{component}/{}/{name}.jsonl", now.format("%Y/%m/%d"))
}

pub fn to_json_lines(letters: &[DeadLetter]) -> Vec<u8> {
    let mut body = Vec::new();
    for letter in letters {
        // Plain strings and options: serialising cannot fail.
        serde_json::to_writer(&mut body, letter).expect("dead letter serialises");
        body.push(b'\n');
    }
    body
}

pub async fn write(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    component: &str,
    letters: &[DeadLetter],
) -> Result<(), String> {
    s3.put_object()
        .bucket(bucket)
        .key(object_key(
            component,
            chrono::Utc::now(),
            letters.first().map_or("empty", |l| l.position.as_str()),
        ))
        .content_type("application/x-ndjson")
        .body(to_json_lines(letters).into())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_letter_under_the_day() {
        let letter = DeadLetter {
            reason: "invalid_json",
            detail: "expected value at line 1 column 1".into(),
            device_id: None,
            position: "shardId-000000000000:1".into(),
            received_at: None,
            original: "bm90IGpzb24=".into(),
        };
        let body = to_json_lines(&[letter.clone(), letter]);
        let lines: Vec<serde_json::Value> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["reason"], "invalid_json");
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            object_key("normalizer", at, "shardId-000000000000:4954"),
            "normalizer/2026/11/23/shardId-000000000000-4954.jsonl"
        );
    }
}
