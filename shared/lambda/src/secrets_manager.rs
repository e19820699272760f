//! [`SecretStore`] on AWS Secrets Manager (locally: moto's). One `GetSecretValue` per read;
//! `put` creates the secret or adds a new version of it. The client is built on first use, so the
//! functions that never read a secret pay nothing for it at cold start.
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use grants_domain::secrets::{SecretError, SecretStore};

pub struct SecretsManagerStore {
    config: aws_config::SdkConfig,
    client: std::sync::OnceLock<aws_sdk_secretsmanager::Client>,
}

impl SecretsManagerStore {
    pub fn new(config: aws_config::SdkConfig) -> Self {
        Self {
            config,
            client: std::sync::OnceLock::new(),
        }
    }

    fn client(&self) -> &aws_sdk_secretsmanager::Client {
        self.client
            .get_or_init(|| aws_sdk_secretsmanager::Client::new(&self.config))
    }
}

fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> SecretError {
    // The error names the secret and the service's reason, never a value.
    SecretError::Unavailable(DisplayErrorContext(e).to_string())
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        match self.client().get_secret_value().secret_id(name).send().await {
            Ok(out) => Ok(out.secret_string),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), GetSecretValueError::ResourceNotFoundException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn put(&self, name: &str, value: &str) -> Result<(), SecretError> {
        let created = self
            .client()
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx)) if matches!(ctx.err(), CreateSecretError::ResourceExistsException(_)) => {
                self.client()
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value)
                    .send()
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}
