//! The console's address on the local stack, standing in for what its CloudFront
//! distribution does on AWS: `/v1/*` goes to the HTTP API, everything else to the
//! distribution, which serves the console bucket. The emulator's distribution cannot use
//! its own HTTP API as an origin, and answers plain HTTP with a redirect to HTTPS; this
//! sits in front of it at a fixed address (the one the console's sign-in returns to).

use std::{sync::Arc, thread};

use anyhow::{Context, Result};

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// The HTTP API's `$default` stage, as the emulator serves it.
    Api { url: String },
    /// The distribution, addressed by its host name on the emulator's port.
    Console { url: String, host: String },
}

#[derive(Debug, Clone)]
pub struct Upstreams {
    /// `http://127.0.0.1:{port}`
    pub emulator: String,
    pub api_id: String,
    /// `{label}.cloudfront.localhost`
    pub distribution_host: String,
}

impl Upstreams {
    pub fn route(&self, path_and_query: &str) -> Route {
        let emulator = self.emulator.trim_end_matches('/');
        if path_and_query == "/v1"
            || path_and_query.starts_with("/v1/")
            || path_and_query.starts_with("/v1?")
        {
            Route::Api {
                url: format!(
                    "{emulator}/_aws/execute-api/{}/$default{path_and_query}",
                    self.api_id
                ),
            }
        } else {
            Route::Console {
                url: format!("{emulator}{path_and_query}"),
                host: self.distribution_host.clone(),
            }
        }
    }
}

/// Hop-by-hop and framing headers: each side sets its own.
fn passes(name: &str) -> bool {
    !matches!(
        name.to_ascii_lowercase().as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "content-length"
            | "upgrade"
            | "proxy-connection"
            | "te"
            | "trailer"
    )
}

/// Serves on `127.0.0.1:{port}` until the process ends.
pub fn serve(port: u16, upstreams: Upstreams, runtime: tokio::runtime::Handle) -> Result<()> {
    let server = Arc::new(
        tiny_http::Server::http(("127.0.0.1", port))
            .map_err(|e| anyhow::anyhow!("listening on 127.0.0.1:{port}: {e}"))?,
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("the upstream client")?;
    tracing::info!(port, distribution = %upstreams.distribution_host, "console served");
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (server, http, upstreams, runtime) = (
                server.clone(),
                http.clone(),
                upstreams.clone(),
                runtime.clone(),
            );
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    if let Err(err) = forward(&http, &upstreams, &runtime, request) {
                        tracing::warn!(error = %err, "console request failed");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

fn forward(
    http: &reqwest::Client,
    upstreams: &Upstreams,
    runtime: &tokio::runtime::Handle,
    mut request: tiny_http::Request,
) -> Result<()> {
    let mut body = Vec::new();
    request.as_reader().read_to_end(&mut body)?;
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())?;
    let route = upstreams.route(request.url());
    let (url, host) = match &route {
        Route::Api { url } => (url.clone(), None),
        Route::Console { url, host } => (url.clone(), Some(host.clone())),
    };
    let mut outgoing = http.request(method, &url);
    for header in request.headers() {
        let name = header.field.as_str().as_str();
        if passes(name) {
            outgoing = outgoing.header(name, header.value.as_str());
        }
    }
    if let Some(host) = host {
        // The distribution by name, reached as its viewers reach it on AWS: over HTTPS.
        outgoing = outgoing
            .header("host", host)
            .header("x-forwarded-proto", "https");
    }
    let answer = runtime.block_on(async {
        let response = outgoing.body(body).send().await?;
        let status = response.status().as_u16();
        let headers: Vec<(String, Vec<u8>)> = response
            .headers()
            .iter()
            .filter(|(name, _)| passes(name.as_str()))
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        let bytes = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, bytes))
    });
    let response = match answer {
        Ok((status, headers, bytes)) => {
            let mut response =
                tiny_http::Response::from_data(bytes.to_vec()).with_status_code(status);
            for (name, value) in headers {
                if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value) {
                    response.add_header(header);
                }
            }
            response
        }
        Err(err) => {
            tracing::warn!(error = %err, url, "upstream unreachable");
            tiny_http::Response::from_string(format!(
                "{{\"message\":\"upstream unreachable: {url}\"}}"
            ))
            .with_status_code(502)
        }
    };
    request.respond(response)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstreams() -> Upstreams {
        Upstreams {
            emulator: "http://127.0.0.1:4566/".into(),
            api_id: "abc123".into(),
            distribution_host: "d1x.cloudfront.localhost".into(),
        }
    }

    #[test]
    fn the_api_paths_go_to_the_api_and_everything_else_to_the_distribution() {
        assert_eq!(
            upstreams().route("/v1/devices?limit=5"),
            Route::Api {
                url: "http://127.0.0.1:4566/_aws/execute-api/abc123/$default/v1/devices?limit=5"
                    .into()
            }
        );
        for path in [
            "/",
            "/index.html",
            "/assets/index-1.js",
            "/config.json",
            "/v1x",
            "/v10/a",
        ] {
            assert_eq!(
                upstreams().route(path),
                Route::Console {
                    url: format!("http://127.0.0.1:4566{path}"),
                    host: "d1x.cloudfront.localhost".into()
                },
                "{path}"
            );
        }
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        for name in ["Host", "connection", "Transfer-Encoding", "content-length"] {
            assert!(!passes(name), "{name}");
        }
        for name in [
            "authorization",
            "Content-Type",
            "accept",
            "x-data-source",
            "cache-control",
        ] {
            assert!(passes(name), "{name}");
        }
    }
}
