//! Loads the user pool's signing keys and hands the `$connect` token check to the runtime.

use hub_runtime::{config, AwsEnv};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use realtime::{
    entry::{authorize, jwks_url},
    token::Verifier,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub_runtime::init_json_tracing();
    let aws = AwsEnv::load().await;
    let issuer = config::required("TOKEN_ISSUER")?;
    let clients: Vec<String> = config::required("ALLOWED_CLIENT_IDS")?
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = jwks_url(&issuer, aws.endpoint_override.as_deref());
    let jwks = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let verifier = Verifier::from_jwks(&jwks, &issuer, clients)?;
    let verifier = &verifier;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<
            aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest,
        >| async move { Ok::<_, Error>(authorize(verifier, &event.payload)) },
    ))
    .await
}
