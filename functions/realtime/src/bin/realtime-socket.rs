//! Wires the connections table and `@connections` to the socket's route events.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use hub_runtime::AwsEnv;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use realtime::{entry::socket_event, socket};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let (connections, sockets) = realtime::aws::wire(&aws)?;
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
