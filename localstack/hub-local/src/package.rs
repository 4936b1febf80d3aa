//! What `sam build` + `sam package` do, for the local stack: every function the template
//! builds with cargo-lambda gets its host-built binary zipped as `bootstrap`, uploaded to
//! an artifacts bucket in the emulator, and its `CodeUri` pointed there. The rest of the
//! template, intrinsic-function tags included, goes through untouched.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde_norway::{Mapping, Value};
use tracing::info;

/// A function resource and the binary that implements it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionBuild {
    pub logical_id: String,
    pub binary: String,
}

/// The functions built with `rust-cargolambda`, in template order. The binary is
/// `BuildProperties.Binary`, or else the last component of `CodeUri` (cargo-lambda's rule
/// for a single-binary crate).
pub fn cargo_lambda_functions(template: &Value) -> Result<Vec<FunctionBuild>> {
    let Some(resources) = template.get("Resources").and_then(Value::as_mapping) else {
        bail!("the template has no Resources");
    };
    let mut functions = Vec::new();
    for (id, resource) in resources {
        let id = id.as_str().context("resource ids are strings")?;
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let metadata = resource.get("Metadata");
        if metadata
            .and_then(|m| m.get("BuildMethod"))
            .and_then(Value::as_str)
            != Some("rust-cargolambda")
        {
            continue;
        }
        let binary = metadata
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|p| p.get("Binary"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                let code_uri = resource.get("Properties")?.get("CodeUri")?.as_str()?;
                Some(Path::new(code_uri).file_name()?.to_str()?.to_owned())
            })
            .with_context(|| {
                format!("{id}: no BuildProperties.Binary and no CodeUri to name the binary")
            })?;
        functions.push(FunctionBuild {
            logical_id: id.to_owned(),
            binary,
        });
    }
    Ok(functions)
}

/// A Lambda deployment package: the executable as `bootstrap`, mode 0755.
pub fn zip_bootstrap(executable: &[u8]) -> Result<Vec<u8>> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)?;
    zip.write_all(executable)?;
    zip.finish()?;
    Ok(buffer.into_inner())
}

/// Sets a function's `CodeUri` to an S3 location.
pub fn point_code_uri(
    template: &mut Value,
    logical_id: &str,
    bucket: &str,
    key: &str,
) -> Result<()> {
    let properties = template
        .get_mut("Resources")
        .and_then(|r| r.get_mut(logical_id))
        .and_then(|r| r.get_mut("Properties"))
        .and_then(Value::as_mapping_mut)
        .with_context(|| format!("{logical_id} has no Properties"))?;
    let mut location = Mapping::new();
    location.insert("Bucket".into(), bucket.into());
    location.insert("Key".into(), key.into());
    properties.insert("CodeUri".into(), Value::Mapping(location));
    Ok(())
}

pub struct PackageRequest<'a> {
    pub template: &'a Path,
    /// Where the host-built executables are (`target/debug`).
    pub binaries_dir: &'a Path,
    pub bucket: &'a str,
}

/// Uploads every cargo-lambda function, then the template pointing at them, and returns
/// the template's key in the bucket: like `sam deploy`, the stack is made from an S3
/// template, since CloudFormation takes at most 51,200 bytes inline.
pub async fn package(s3: &aws_sdk_s3::Client, request: &PackageRequest<'_>) -> Result<String> {
    let text = std::fs::read_to_string(request.template)
        .with_context(|| format!("reading {}", request.template.display()))?;
    let mut template: Value = serde_norway::from_str(&text).context("parsing the template")?;
    ensure_bucket(s3, request.bucket).await?;
    for function in &cargo_lambda_functions(&template)? {
        let path: PathBuf = request.binaries_dir.join(&function.binary);
        let executable = std::fs::read(&path).with_context(|| {
            format!(
                "{}: binary {} not built (cargo build --workspace)",
                function.logical_id,
                path.display()
            )
        })?;
        let key = content_key("functions", &function.binary, "zip", &executable);
        let package = zip_bootstrap(&executable)?;
        let bytes = package.len();
        upload(s3, request.bucket, &key, package).await?;
        point_code_uri(&mut template, &function.logical_id, request.bucket, &key)?;
        info!(function = %function.logical_id, binary = %function.binary, key, bytes, "function packaged");
    }
    let packaged = serde_norway::to_string(&template).context("writing the packaged template")?;
    let key = content_key("templates", "template", "yaml", packaged.as_bytes());
    upload(s3, request.bucket, &key, packaged.into_bytes()).await?;
    Ok(key)
}

/// `{dir}/{name}-{first 8 bytes of SHA-256}.{ext}`: a changed file gets a new key.
fn content_key(dir: &str, name: &str, ext: &str, content: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, content);
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{dir}/{name}-{hex}.{ext}")
}

async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))
        .with_context(|| format!("uploading {key}"))?;
    Ok(())
}

async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<()> {
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))
        .with_context(|| format!("creating bucket {bucket}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Resources:
  Stream:
    Type: AWS::Kinesis::Stream
  Normalizer:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties: { Binary: normalizer }
    Properties:
      CodeUri: functions/normalizer
      Environment:
        Variables:
          STREAM: !Ref Stream
          ARN: !Sub "arn:${AWS::Partition}:x:${!literal}"
  Store:
    Type: AWS::Serverless::Function
    Metadata: { BuildMethod: rust-cargolambda }
    Properties: { CodeUri: functions/telemetry-store }
  Python:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: src/, Runtime: python3.12 }
"#;

    #[test]
    fn finds_cargo_lambda_functions_and_their_binaries() {
        let template: Value = serde_norway::from_str(TEMPLATE).unwrap();
        let functions = cargo_lambda_functions(&template).unwrap();
        assert_eq!(
            functions,
            vec![
                FunctionBuild {
                    logical_id: "Normalizer".into(),
                    binary: "normalizer".into()
                },
                FunctionBuild {
                    logical_id: "Store".into(),
                    binary: "telemetry-store".into()
                },
            ]
        );
    }

    #[test]
    fn code_uri_rewrite_keeps_intrinsic_tags() {
        let mut template: Value = serde_norway::from_str(TEMPLATE).unwrap();
        point_code_uri(&mut template, "Normalizer", "artifacts", "functions/n.zip").unwrap();
        let text = serde_norway::to_string(&template).unwrap();
        assert!(text.contains("STREAM: !Ref Stream"), "{text}");
        assert!(
            text.contains("!Sub arn:${AWS::Partition}:x:${!literal}"),
            "{text}"
        );
        let reparsed: Value = serde_norway::from_str(&text).unwrap();
        let code_uri = &reparsed["Resources"]["Normalizer"]["Properties"]["CodeUri"];
        assert_eq!(code_uri["Bucket"], Value::from("artifacts"));
        assert_eq!(code_uri["Key"], Value::from("functions/n.zip"));
    }

    #[test]
    fn package_holds_an_executable_bootstrap() {
        let package = zip_bootstrap(b"#!/bin/sh\necho hi\n").unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(package)).unwrap();
        let file = archive.by_name("bootstrap").unwrap();
        assert_eq!(file.unix_mode().map(|m| m & 0o777), Some(0o755));
        assert_eq!(file.size(), 18);
    }
}
