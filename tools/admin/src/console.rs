//! `hub-admin console publish`: the built console (`console/dist`) into the stack's
//! console bucket, and beside it `config.json`, which tells the one build where this
//! stack's API, socket and sign-in are. Hashed assets are cached for good; the page and
//! its configuration are revalidated, so a new publish takes effect on the next load.
//!
//! The page is published with its content security policy in a `<meta>` tag: only the
//! publisher knows this stack's socket and sign-in origins, and a tag in the page holds
//! wherever it is served from (CloudFront on AWS, the local stack's console address). The
//! distribution's response headers add what a tag cannot carry (`frame-ancestors`).

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

impl ConsoleConfig {
    /// What the page may load and reach: its own files, the API, the socket and the
    /// sign-in's token endpoint; no inline or injected scripts, no plugins, no `<base>`.
    pub fn content_security_policy(&self) -> Result<String> {
        let mut connect = vec!["'self'".to_owned()];
        for (what, url) in [
            ("API", &self.api_url),
            ("socket", &self.realtime_url),
            ("sign-in", &self.auth_url),
        ] {
            if url.is_empty() && what == "API" {
                continue;
            }
            let origin = reqwest::Url::parse(url)
                .with_context(|| format!("the {what} URL {url:?}"))?
                .origin();
            anyhow::ensure!(
                origin.is_tuple(),
                "the {what} URL {url:?} has no origin a policy can name"
            );
            let origin = origin.ascii_serialization();
            if !connect.contains(&origin) {
                connect.push(origin);
            }
        }
        Ok(format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {}; object-src 'none'; base-uri 'none'; form-action 'self'",
            connect.join(" ")
        ))
    }
}

/// `index.html` with `policy` as the first element of its `<head>`, before anything the
/// policy governs.
pub fn with_policy(page: &str, policy: &str) -> Result<String> {
    let head = page
        .find("<head>")
        .context("index.html has no <head> to hold the content security policy")?
        + "<head>".len();
    let escaped = policy.replace('&', "&amp;").replace('"', "&quot;");
    Ok(format!(
        "{}\n    <meta http-equiv=\"Content-Security-Policy\" content=\"{escaped}\" />{}",
        &page[..head],
        &page[head..]
    ))
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
    let policy = config.content_security_policy()?;
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
        let mut body = std::fs::read(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        if key == "index.html" {
            let page = String::from_utf8(body).context("index.html is not UTF-8")?;
            body = with_policy(&page, &policy)?.into_bytes();
        }
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

    fn config(api_url: &str) -> ConsoleConfig {
        ConsoleConfig {
            api_url: api_url.into(),
            realtime_url: "wss://abc123.execute-api.eu-west-1.amazonaws.com/live".into(),
            auth_url: "https://hub.auth.eu-west-1.amazoncognito.com".into(),
            client_id: "client".into(),
            redirect_uri: "https://d1.cloudfront.net/".into(),
        }
    }

    #[test]
    fn the_policy_lets_the_page_reach_its_api_socket_and_sign_in_and_nothing_else() {
        let policy = config("").content_security_policy().unwrap();
        assert_eq!(
            policy,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self' wss://abc123.execute-api.eu-west-1.amazonaws.com \
             https://hub.auth.eu-west-1.amazoncognito.com; object-src 'none'; \
             base-uri 'none'; form-action 'self'"
        );
        // An API elsewhere is named; one origin is named once (the local stack serves
        // its socket and sign-in from one emulator, on two schemes).
        let local = ConsoleConfig {
            api_url: "http://127.0.0.1:4630/_aws/execute-api/x/$default".into(),
            realtime_url: "ws://127.0.0.1:4630/_aws/execute-api/y/live".into(),
            auth_url: "http://127.0.0.1:4630".into(),
            ..config("")
        };
        assert!(local
            .content_security_policy()
            .unwrap()
            .contains("connect-src 'self' http://127.0.0.1:4630 ws://127.0.0.1:4630;"));
        let no_origin = ConsoleConfig {
            realtime_url: "not a url".into(),
            ..config("")
        };
        let err = no_origin.content_security_policy().unwrap_err();
        assert!(format!("{err:#}").contains("socket URL"), "{err:#}");
    }

    #[test]
    fn the_policy_is_the_first_thing_in_the_head() {
        let page = "<!doctype html>\n<html>\n  <head>\n    <script type=\"module\" src=\"/assets/a.js\"></script>\n  </head>\n</html>\n";
        let out = with_policy(page, "default-src 'self'; x-\"&").unwrap();
        let meta = out.find("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; x-&quot;&amp;\" />").unwrap();
        assert!(meta < out.find("<script").unwrap());
        assert_eq!(out.replace("\n    <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; x-&quot;&amp;\" />", ""), page);
        assert!(with_policy("<html><body></body></html>", "x").is_err());
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
