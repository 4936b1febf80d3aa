//! `hub-admin console publish`: the built console (`console/dist`) into the stack's
//! console bucket, and beside it `config.json`, which tells the one build where this
//! stack's API, socket and sign-in are. Hashed assets are cached for good; the page and
//! its configuration are revalidated, so a new publish takes effect on the next load.

use std::path::Path;

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleConfig {
    /// Base of the admin API; empty when the console's origin serves it (`/v1/*`).
    pub api_url: String,
    pub realtime_url: String,
    /// The hosted UI's base URL.
    pub auth_url: String,
    pub client_id: String,
    /// The console's own root URL, where the sign-in returns.
    pub redirect_uri: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub files: usize,
    pub bytes: u64,
}

/// The Cache-Control a console file is served with.
pub fn cache_control(key: &str) -> &'static str {
    // Vite names every asset by its content's hash.
    if key.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

pub async fn publish(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    dist: &Path,
    config: &ConsoleConfig,
) -> Result<Published> {
    if !dist.join("index.html").is_file() {
        anyhow::bail!(
            "{} has no index.html: build the console first (npm run build)",
            dist.display()
        );
    }
    let mut published = Published::default();
    for entry in walkdir::WalkDir::new(dist).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", dist.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let key = entry
            .path()
            .strip_prefix(dist)
            .expect("walkdir stays under its root")
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if key == "config.json" {
            continue;
        }
        let body = std::fs::read(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        published.bytes += body.len() as u64;
        put(s3, bucket, &key, body, &content_type(&key)).await?;
        published.files += 1;
    }
    let config = serde_json::to_vec_pretty(config)?;
    put(s3, bucket, "config.json", config, "application/json").await?;
    Ok(published)
}

fn content_type(key: &str) -> String {
    let guessed = mime_guess::from_path(key).first_or_octet_stream();
    match guessed.type_() {
        mime_guess::mime::TEXT | mime_guess::mime::JAVASCRIPT => {
            format!("{guessed}; charset=utf-8")
        }
        _ if guessed.subtype() == mime_guess::mime::JAVASCRIPT => {
            format!("{guessed}; charset=utf-8")
        }
        _ => guessed.to_string(),
    }
}

async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<()> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .cache_control(cache_control(key))
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "uploading {key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_assets_are_cached_for_good_and_the_page_is_revalidated() {
        assert_eq!(
            cache_control("assets/index-qT_EW5AJ.js"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(cache_control("index.html"), "no-cache");
        assert_eq!(cache_control("config.json"), "no-cache");
    }

    #[test]
    fn text_is_utf8_and_unknown_files_are_bytes() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("assets/a.css"), "text/css; charset=utf-8");
        assert!(content_type("assets/a.js").contains("javascript; charset=utf-8"));
        assert_eq!(content_type("assets/logo.svg"), "image/svg+xml");
        assert_eq!(content_type("blob.bin"), "application/octet-stream");
    }
}
