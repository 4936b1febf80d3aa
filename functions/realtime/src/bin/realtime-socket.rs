//! Wires the connections table and `@connections` to the socket's route events.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use hub_runtime::{config, AwsEnv};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use realtime::{
    aws::{ApiGatewaySockets, DynamoConnections},
    entry::{connections_endpoint, socket_event},
    socket,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let connections = DynamoConnections {
        client: aws_sdk_dynamodb::Client::new(&aws.sdk),
        table: config::required("CONNECTIONS_TABLE")?,
    };
    let endpoint = connections_endpoint(
        &config::required("REALTIME_API_ID")?,
        &config::required("REALTIME_STAGE")?,
        &aws.sdk.region().map(|r| r.to_string()).unwrap_or_default(),
        aws.endpoint_override.as_deref(),
    );
    let sockets = ApiGatewaySockets {
        client: aws_sdk_apigatewaymanagement::Client::from_conf(
            aws_sdk_apigatewaymanagement::config::Builder::from(&aws.sdk)
                .endpoint_url(endpoint)
                .build(),
        ),
    };
    let (connections, sockets) = (&connections, &sockets);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            let mut response = ApiGatewayProxyResponse::default();
            response.status_code = match socket_event(&event.payload) {
                Ok(event) => {
                    socket::handle(connections, sockets, event).await?;
                    200
                }
                Err(err) => {
                    tracing::warn!(error = %err, "not a socket event");
                    400
                }
            };
            Ok::<_, Error>(response)
        },
    ))
    .await
}
