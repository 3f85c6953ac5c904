//! Credentials: a static header, or a login request whose token is extracted from the
//! JSON answer and fetched again on a 401.

use std::time::{Duration, Instant};

use bytes::Bytes;
use livefire_core::jsonpath::{lookup, parse_path};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FuzzError;
use crate::http::{Client, Outcome, Prepared, Target};

/// How the fuzzer authenticates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuthConfig {
    /// A fixed header, e.g. `Authorization: Bearer ...`.
    Header { header: String, value: String },
    /// A login request; the token at `token` (a JSON path like `$.token`) goes into
    /// `header` formatted by `format` (`Bearer {token}`).
    Login {
        login: LoginRequest,
        header: String,
        format: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub method: String,
    /// Absolute `http://` URL, or a path relative to the base URL.
    pub url: String,
    #[serde(default)]
    pub json: Option<Value>,
    /// JSON path of the token in the answer: `$.token`, `$.data.access_token`.
    pub token: String,
}

/// Live credentials for one identity.
#[derive(Debug)]
pub struct Identity {
    config: AuthConfig,
    headers: Vec<(String, String)>,
    last_login: Option<Instant>,
}

impl Identity {
    /// Prepares the identity, logging in once when it uses a login request.
    pub async fn new(
        config: AuthConfig,
        target: &Target,
        timeout: Duration,
    ) -> Result<Identity, FuzzError> {
        let mut id = Identity {
            config,
            headers: Vec::new(),
            last_login: None,
        };
        id.refresh(target, timeout).await?;
        Ok(id)
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The header name credentials travel in.
    pub fn header_name(&self) -> &str {
        match &self.config {
            AuthConfig::Header { header, .. } | AuthConfig::Login { header, .. } => header,
        }
    }

    /// Fetches a new token (at most once a second); static headers never change.
    pub async fn refresh(&mut self, target: &Target, timeout: Duration) -> Result<bool, FuzzError> {
        let (login, header, format) = match &self.config {
            AuthConfig::Header { header, value } => {
                self.headers = vec![(header.clone(), value.clone())];
                return Ok(false);
            }
            AuthConfig::Login {
                login,
                header,
                format,
            } => (login.clone(), header.clone(), format.clone()),
        };
        if self
            .last_login
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return Ok(false);
        }
        self.last_login = Some(Instant::now());
        let (login_target, path) = if login.url.starts_with("http://") {
            let t =
                Target::from_base_url(&login.url).map_err(|e| FuzzError::Login(e.to_string()))?;
            let path = if t.base_path.is_empty() {
                "/".to_string()
            } else {
                t.base_path.clone()
            };
            (
                Target {
                    base_path: String::new(),
                    ..t
                },
                path,
            )
        } else {
            (target.clone(), format!("{}{}", target.base_path, login.url))
        };
        let method = http::Method::from_bytes(login.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| FuzzError::Login(format!("bad login method {:?}", login.method)))?;
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        let body = match &login.json {
            Some(v) => {
                headers.push(("content-type".into(), "application/json".into()));
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let mut client = Client::new(login_target, timeout, 1 << 20);
        let answer = client
            .send(&Prepared {
                method,
                path_and_query: path,
                headers,
                body,
            })
            .await;
        let resp = match answer {
            Outcome::Response(r) if (200..300).contains(&r.status) => r,
            Outcome::Response(r) => {
                return Err(FuzzError::Login(format!(
                    "the login request answered {}",
                    r.status
                )));
            }
            Outcome::Failed { error, .. } => return Err(FuzzError::Login(error.to_string())),
        };
        let json: Value = serde_json::from_slice(&resp.body)
            .map_err(|_| FuzzError::Login("the login answer is not JSON".into()))?;
        let path = parse_path(&login.token).map_err(|e| FuzzError::Login(e.to_string()))?;
        let token = lookup(&json, &path)
            .and_then(|v| v.as_str().map(String::from))
            .ok_or_else(|| {
                FuzzError::Login(format!("no string at {} in the login answer", login.token))
            })?;
        self.headers = vec![(header, format.replace("{token}", &token))];
        Ok(true)
    }
}
