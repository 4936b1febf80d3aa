//! The HTTPS client of webhook deliveries over real connections: a receiver on the
//! loopback address is refused by its literal address and by a name resolving to it,
//! and reached when the stack allows internal addresses (a local stack's receivers).

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use webhooks::{aws::HttpPoster, PostError, Poster};

/// A receiver on 127.0.0.1 that answers every request 204; its port.
async fn receiver() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let _ = socket
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    port
}

#[tokio::test]
async fn internal_addresses_are_refused_after_resolution_unless_allowed() {
    let port = receiver().await;
    let public_only = HttpPoster::new(Duration::from_secs(5), false).unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/h"),
        format!("http://localhost:{port}/h"),
        format!("http://[::ffff:127.0.0.1]:{port}/h"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        match public_only.post(&url, &[], b"{}".to_vec()).await {
            Err(PostError::Refused(reason)) => {
                assert!(reason.contains("internal"), "{url}: {reason}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    // Positive control: the same receiver, reached when internal addresses are allowed.
    let local = HttpPoster::new(Duration::from_secs(5), true).unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/h"),
        format!("http://localhost:{port}/h"),
    ] {
        assert_eq!(
            local.post(&url, &[], b"{}".to_vec()).await,
            Ok(204),
            "{url}"
        );
    }
}
