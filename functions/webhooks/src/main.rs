//! Wires the webhooks table, the queues and an HTTPS client to the webhook handler.

use std::time::Duration;

use hub_detection::webhooks_table::{DynamoWebhooks, SecretSeal};
use hub_runtime::{config, AwsEnv};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use webhooks::{
    aws::{CachedHooks, HttpPoster, SqsQueues},
    Webhooks,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let webhooks = Webhooks {
        hooks: CachedHooks::new(
            DynamoWebhooks {
                client: aws_sdk_dynamodb::Client::new(&aws.sdk),
                table: config::required("WEBHOOKS_TABLE")?,
                secrets: Some(SecretSeal {
                    kms: aws_sdk_kms::Client::new(&aws.sdk),
                    key_id: config::required("WEBHOOK_SECRETS_KEY")?,
                }),
            },
            Duration::from_secs(config::or("WEBHOOKS_CACHE_SECONDS", 30)?),
        ),
        queue: SqsQueues {
            client: aws_sdk_sqs::Client::new(&aws.sdk),
            delivery_queue_url: config::required("DELIVERY_QUEUE_URL")?,
            dead_letter_queue_url: config::required("DEAD_LETTER_QUEUE_URL")?,
        },
        poster: HttpPoster::new(
            Duration::from_secs(5),
            config::or("ALLOW_PRIVATE_WEBHOOK_ADDRESSES", false)?,
        )?,
        allow_http: config::or("ALLOW_HTTP_WEBHOOKS", false)?,
    };
    let webhooks = &webhooks;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, Error>(webhooks.handle(event.payload).await)
        },
    ))
    .await
}
