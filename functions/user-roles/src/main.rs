//! Hands the user pool's pre-token-generation events to the runtime.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPreTokenGenV2;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<CognitoEventUserPoolsPreTokenGenV2>| async move {
            Ok::<_, Error>(user_roles::grant(event.payload))
        },
    ))
    .await
}
