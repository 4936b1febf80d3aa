//! The Lambda side: an API Gateway (payload 2.0) request in, a JSON response out, one
//! EMF line per request.

use chrono::Utc;
use hub_runtime::emf::Metrics;
use lambda_http::{http::header::CONTENT_TYPE, Body, Request, Response};

use crate::{Ingest, IngestRequest, KeyStore, RawSink};

pub const API_KEY_HEADER: &str = "x-api-key";

impl<K: KeyStore, S: RawSink> Ingest<K, S> {
    pub async fn handle_http(&self, request: Request) -> Response<Body> {
        let started = std::time::Instant::now();
        let api_key = request
            .headers()
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        let reply = self
            .handle(IngestRequest {
                api_key,
                body: request.body().as_ref(),
                received_at: Utc::now(),
            })
            .await;
        Metrics::new("ingest")
            .dimension("Outcome", reply.outcome)
            .count("http_ingest_requests_total", 1)
            .count("http_ingest_messages_total", reply.accepted as u64)
            .millis(
                "http_ingest_latency",
                started.elapsed().as_secs_f64() * 1000.0,
            )
            .flush();
        let mut response = Response::builder()
            .status(reply.status)
            .header(CONTENT_TYPE, "application/json");
        if reply.status == 503 {
            response = response.header("retry-after", "1");
        }
        response
            .body(Body::from(reply.body.to_string()))
            .expect("status and headers are valid")
    }
}
