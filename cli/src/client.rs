//! The HTTP client of the amiforge API: endpoint rules, SigV4 signing with the standard AWS
//! credentials chain, and decoding of the API's error bodies into messages for the user.

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::{HeaderValue, Method};
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

/// The service name API Gateway checks signatures for.
const SERVICE: &str = "execute-api";

/// How long a request may take before it is given up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials this close to expiry are resolved again before signing.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Hosts that may be reached over plain HTTP: the local stack.
const LOCAL_HOSTS: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

/// What the client needs to know, from the global options.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The API's base URL.
    pub endpoint: Option<String>,
    /// The region to sign for, when not the AWS config chain's.
    pub region: Option<String>,
    /// Whether to sign requests.
    pub sign: bool,
    /// Whether to print debug lines to stderr.
    pub verbose: bool,
}

/// Why a request could not be made or was refused.
#[derive(Debug)]
pub enum Error {
    /// No `--endpoint` and no `AMIFORGE_ENDPOINT`.
    NoEndpoint,
    /// The endpoint breaks a rule.
    BadEndpoint { endpoint: String, reason: String },
    /// Signing is on but no region is configured.
    NoRegion,
    /// The AWS credentials chain found nothing usable.
    Credentials(Box<dyn StdError + Send + Sync>),
    /// The request could not be signed.
    Signing(Box<dyn StdError + Send + Sync>),
    /// The request could not be built.
    Request(Box<dyn StdError + Send + Sync>),
    /// The API could not be reached, or the answer not read.
    Transport(reqwest::Error),
    /// The API answered with an error status.
    Api(ApiFailure),
    /// The API answered success with a body that is not JSON or not the expected shape.
    Decode {
        status: u16,
        source: serde_json::Error,
    },
}

impl Error {
    /// Whether trying again later may succeed: the network, throttling or a server error.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Api(failure) => failure.status == 429 || failure.status >= 500,
            _ => false,
        }
    }

    /// The messages to show the user, one per line.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Self::Api(failure) => failure.messages(),
            other => vec![other.to_string()],
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEndpoint => f.write_str(
                "no API endpoint: pass --endpoint URL or set AMIFORGE_ENDPOINT to the API's base \
                 URL (https://<api-id>.execute-api.<region>.amazonaws.com/<stage>)",
            ),
            Self::BadEndpoint { endpoint, reason } => {
                write!(f, "bad endpoint {endpoint:?}: {reason}")
            }
            Self::NoRegion => f.write_str(
                "no AWS region to sign requests for: pass --region or set AWS_REGION \
                 (or --no-sign for an API without IAM authorization)",
            ),
            Self::Credentials(source) => write!(
                f,
                "no usable AWS credentials ({source}): configure them as for the AWS CLI \
                 (AWS_PROFILE, `aws sso login`, AWS_ACCESS_KEY_ID) or pass --no-sign"
            ),
            Self::Signing(source) => write!(f, "could not sign the request: {source}"),
            Self::Request(source) => write!(f, "could not build the request: {source}"),
            Self::Transport(source) if source.is_timeout() => write!(
                f,
                "the API did not answer within {} s; the request may still have been carried \
                 out, so check with `amiforge jobs` before repeating it",
                TIMEOUT.as_secs()
            ),
            Self::Transport(source) => write!(f, "could not reach the API: {source}"),
            Self::Api(failure) => f.write_str(&failure.messages().join("; ")),
            Self::Decode { status, source } => {
                write!(
                    f,
                    "the API answered {status} with a body the CLI cannot read: {source}"
                )
            }
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Credentials(source) | Self::Signing(source) | Self::Request(source) => {
                Some(source.as_ref())
            }
            Self::Transport(source) => Some(source),
            Self::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One thing the API said was wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

/// An error answer: its status and every error it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub status: u16,
    pub errors: Vec<ApiError>,
}

/// The API's error body; `errors` lists every bad field, `error` is the first.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    error: Option<ApiError>,
    errors: Vec<ApiError>,
    /// What API Gateway and Lambda function URLs send instead, such as `Forbidden`.
    message: Option<String>,
    #[serde(rename = "Message")]
    upper_message: Option<String>,
}

/// The most of a body that is not JSON shown in an error.
const SNIPPET: usize = 200;

impl ApiFailure {
    /// Reads an error answer; a body that is not the API's shape still gives a message.
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let decoded: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let errors = match decoded {
            Some(body) if !body.errors.is_empty() => body.errors,
            Some(ErrorBody {
                error: Some(error), ..
            }) => vec![error],
            Some(ErrorBody {
                message: Some(message),
                ..
            })
            | Some(ErrorBody {
                upper_message: Some(message),
                ..
            }) => vec![ApiError {
                code: reason.to_owned(),
                message: gateway_message(status, &message),
                field: None,
            }],
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                let snippet: String = text.chars().take(SNIPPET).collect();
                let message = if snippet.is_empty() {
                    format!("the API answered {status} {reason}")
                } else {
                    format!("the API answered {status} {reason}: {snippet}")
                };
                vec![ApiError {
                    code: reason.to_owned(),
                    message,
                    field: None,
                }]
            }
        };
        Self { status, errors }
    }

    /// One line per error: `<message> (field: <field>)`, the field only when there is one.
    pub fn messages(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|e| match &e.field {
                Some(field) if !field.is_empty() => format!("{} (field: {field})", e.message),
                _ => e.message.clone(),
            })
            .collect()
    }
}

/// A gateway's own refusal, with a hint when it is about the signature.
fn gateway_message(status: u16, message: &str) -> String {
    if status == 403 {
        format!(
            "{message} (the API refused the request's signature or identity: check the AWS \
             credentials and --region, or use --no-sign if the API has no IAM authorization)"
        )
    } else {
        message.to_owned()
    }
}

/// Checks an endpoint: https, or plain http to the local stack only.
///
/// # Errors
/// [`Error::BadEndpoint`] saying which rule the URL breaks.
pub fn parse_endpoint(endpoint: &str) -> Result<Url, Error> {
    let bad = |reason: &str| Error::BadEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(endpoint).map_err(|e| bad(&format!("not a URL ({e})")))?;
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" => {}
        "http" if LOCAL_HOSTS.contains(&host) => {}
        "http" => {
            return Err(bad(
                "plain http:// is allowed only for 127.0.0.1 and localhost (the local stack); \
                 use https://",
            ))
        }
        _ => return Err(bad("the endpoint must start with https://")),
    }
    if host.is_empty() {
        return Err(bad("the endpoint has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("the endpoint must not have a query or fragment"));
    }
    Ok(url)
}

/// Whether requests to this endpoint may go unsigned when no credentials are found.
fn is_local(url: &Url) -> bool {
    url.scheme() == "http"
}

/// Signs one request with credentials resolved earlier.
type SignFn = Box<dyn Fn(&mut http::Request<Vec<u8>>) -> Result<(), Error> + Send + Sync>;

/// Credentials ready to sign with, and when they stop working.
struct Signer {
    sign: SignFn,
    expires: Option<SystemTime>,
}

/// How requests are authorized.
enum Auth {
    Unsigned,
    SigV4 {
        /// Kept to resolve credentials again when they expire; boxed as it is large.
        config: Box<SdkConfig>,
        region: String,
        signer: Mutex<Signer>,
    },
}

/// A connection to one amiforge API.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    verbose: bool,
}

impl Client {
    /// Checks the endpoint and, unless signing is off, loads the AWS configuration and
    /// credentials.
    ///
    /// # Errors
    /// A missing or bad endpoint, no region or no credentials (for a non-local endpoint), or
    /// an HTTP client that cannot be built.
    pub async fn connect(settings: &Settings) -> Result<Self, Error> {
        let endpoint = settings.endpoint.as_deref().ok_or(Error::NoEndpoint)?;
        let base = parse_endpoint(endpoint)?;
        let auth = if settings.sign {
            let mut loader = aws_config::defaults(BehaviorVersion::latest());
            if let Some(region) = &settings.region {
                loader = loader.region(Region::new(region.clone()));
            }
            let config = loader.load().await;
            Auth::for_endpoint(config, &base, settings.verbose).await?
        } else {
            debug(settings.verbose, "signing off (--no-sign)");
            Auth::Unsigned
        };
        Self::with_auth(base, auth, settings.verbose)
    }

    fn with_auth(base: Url, auth: Auth, verbose: bool) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("amiforge-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .build()
            .map_err(Error::Transport)?;
        Ok(Self {
            http,
            base,
            auth,
            verbose,
        })
    }

    /// `GET` a path below the endpoint; `query` pairs with no value are left out.
    ///
    /// # Errors
    /// See [`Client::send`].
    pub async fn get(
        &self,
        path: &[&str],
        query: &[(&str, Option<String>)],
    ) -> Result<Value, Error> {
        self.send(Method::GET, path, query, None, &[]).await
    }

    /// Sends a request with an optional JSON body and returns the JSON answer.
    ///
    /// # Errors
    /// [`Error::Api`] for an error status, [`Error::Transport`] when the API cannot be reached,
    /// [`Error::Decode`] for a success that is not JSON, signing and credential errors.
    pub async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, Option<String>)],
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, Error> {
        let url = self.url(path, query)?;
        let mut request = build_request(method, &url, body, headers)?;
        self.authorize(&mut request).await?;
        let request = reqwest::Request::try_from(request).map_err(|e| Error::Request(e.into()))?;

        let started = Instant::now();
        let method = request.method().clone();
        let response = self.http.execute(request).await.map_err(Error::Transport)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(Error::Transport)?;
        self.debug(format_args!(
            "{method} {url} -> {status} in {} ms",
            started.elapsed().as_millis()
        ));

        if !(200..300).contains(&status) {
            return Err(Error::Api(ApiFailure::from_body(status, &bytes)));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode { status, source })
    }

    /// The endpoint's URL with `path` appended as escaped segments and the query encoded so
    /// that the signature and API Gateway agree on it.
    fn url(&self, path: &[&str], query: &[(&str, Option<String>)]) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::BadEndpoint {
                endpoint: self.base.to_string(),
                reason: "the endpoint cannot have a path".to_owned(),
            })?
            .pop_if_empty()
            .extend(path);
        let pairs: Vec<String> = query
            .iter()
            .filter_map(|(key, value)| {
                value
                    .as_ref()
                    .map(|v| format!("{}={}", encode(key), encode(v)))
            })
            .collect();
        if !pairs.is_empty() {
            url.set_query(Some(&pairs.join("&")));
        }
        Ok(url)
    }

    async fn authorize(&self, request: &mut http::Request<Vec<u8>>) -> Result<(), Error> {
        let Auth::SigV4 {
            config,
            region,
            signer,
        } = &self.auth
        else {
            return Ok(());
        };
        let mut signer = signer.lock().await;
        let expiring = signer
            .expires
            .is_some_and(|at| at <= SystemTime::now() + REFRESH_BEFORE);
        if expiring {
            self.debug("credentials expire soon; resolving them again");
            *signer = Signer::resolve(config, region).await?;
        }
        (signer.sign)(request)
    }

    fn debug(&self, message: impl fmt::Display) {
        debug(self.verbose, message);
    }
}

impl Auth {
    /// Signs with the chain's credentials; a local plain-HTTP endpoint without credentials or
    /// region gets unsigned requests.
    async fn for_endpoint(config: SdkConfig, base: &Url, verbose: bool) -> Result<Self, Error> {
        let Some(region) = config.region().map(ToString::to_string) else {
            if is_local(base) {
                debug(
                    verbose,
                    "no AWS region configured; sending unsigned requests to the local endpoint",
                );
                return Ok(Self::Unsigned);
            }
            return Err(Error::NoRegion);
        };
        match Signer::resolve(&config, &region).await {
            Ok(signer) => {
                debug(
                    verbose,
                    format_args!("signing requests with SigV4 for {SERVICE} in {region}"),
                );
                Ok(Self::SigV4 {
                    config: Box::new(config),
                    region,
                    signer: Mutex::new(signer),
                })
            }
            Err(error) if is_local(base) => {
                debug(
                    verbose,
                    format_args!("{error}; sending unsigned requests to the local endpoint"),
                );
                Ok(Self::Unsigned)
            }
            Err(error) => Err(error),
        }
    }
}

impl Signer {
    /// Resolves credentials from the configuration's provider.
    async fn resolve(config: &SdkConfig, region: &str) -> Result<Self, Error> {
        let provider = config
            .credentials_provider()
            .ok_or_else(|| Error::Credentials("no credentials provider is configured".into()))?;
        // Calling through the trait object reaches `ProvideCredentials` without importing it
        // from a crate the CLI does not depend on.
        let credentials = provider
            .as_ref()
            .provide_credentials()
            .await
            .map_err(|e| Error::Credentials(Box::new(e)))?;
        let expires = credentials.expiry();
        let identity = credentials.into();
        let region = region.to_owned();
        let sign: SignFn = Box::new(move |request| {
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(&region)
                .name(SERVICE)
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .map_err(|e| Error::Signing(Box::new(e)))?
                .into();
            let headers: Vec<(&str, &str)> = request
                .headers()
                .iter()
                .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
                .collect();
            let signable = SignableRequest::new(
                request.method().as_str(),
                request.uri().to_string(),
                headers.into_iter(),
                SignableBody::Bytes(request.body()),
            )
            .map_err(|e| Error::Signing(Box::new(e)))?;
            let (instructions, _signature) = sign(signable, &params)
                .map_err(|e| Error::Signing(Box::new(e)))?
                .into_parts();
            instructions.apply_to_request_http1x(request);
            Ok(())
        });
        Ok(Self { sign, expires })
    }
}

/// The request to sign and send; only the headers set here are signed.
fn build_request(
    method: Method,
    url: &Url,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Result<http::Request<Vec<u8>>, Error> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url.as_str())
        .header(http::header::ACCEPT, "application/json");
    let bytes = match body {
        Some(value) => {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            serde_json::to_vec(value).map_err(|e| Error::Request(Box::new(e)))?
        }
        None => Vec::new(),
    };
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).map_err(|e| Error::Request(Box::new(e)))?;
        builder = builder.header(*name, value);
    }
    builder.body(bytes).map_err(|e| Error::Request(Box::new(e)))
}

/// Percent-encodes everything but RFC 3986's unreserved characters, the encoding SigV4
/// canonicalizes to, so that `*` and spaces in a name pattern sign correctly.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Prints a debug line to stderr when asked to be verbose.
pub fn debug(verbose: bool, message: impl fmt::Display) {
    if verbose {
        eprintln!("debug: {message}");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    /// A request as the fake API received it.
    #[derive(Debug)]
    pub(crate) struct Received {
        pub(crate) request_line: String,
        pub(crate) headers: Vec<(String, String)>,
        pub(crate) body: Vec<u8>,
    }

    impl Received {
        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        pub(crate) fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap()
        }
    }

    /// A one-request HTTP server on an ephemeral port answering `status` with `body`.
    pub(crate) fn fake_api(status: u16, body: &str) -> (String, JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/prod", listener.local_addr().unwrap());
        let body = body.to_owned();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            let length: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut request_body = vec![0; length];
            reader.read_exact(&mut request_body).unwrap();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            Received {
                request_line: request_line.trim_end().to_owned(),
                headers,
                body: request_body,
            }
        });
        (endpoint, handle)
    }

    /// A client of `endpoint` that does not sign.
    pub(crate) fn unsigned(endpoint: &str) -> Client {
        Client::with_auth(parse_endpoint(endpoint).unwrap(), Auth::Unsigned, false).unwrap()
    }

    #[test]
    fn https_endpoints_are_accepted_with_their_stage_path() {
        let url = parse_endpoint("https://abc.execute-api.eu-west-1.amazonaws.com/prod").unwrap();
        assert_eq!(url.path(), "/prod");
    }

    #[test]
    fn plain_http_is_allowed_only_for_the_local_stack() {
        for local in [
            "http://127.0.0.1:9000/lambda-url/api",
            "http://localhost:3000",
            "http://[::1]:8080/",
        ] {
            assert!(parse_endpoint(local).is_ok(), "{local}");
        }
        let err = parse_endpoint("http://api.example.com/prod").unwrap_err();
        assert!(
            err.to_string().contains("only for 127.0.0.1 and localhost"),
            "{err}"
        );
        assert!(parse_endpoint("http://127.0.0.2/").is_err());
        assert!(parse_endpoint("ftp://localhost/").is_err());
        assert!(parse_endpoint("api.example.com").is_err());
        assert!(parse_endpoint("https://api.example.com/prod?x=1").is_err());
    }

    #[test]
    fn paths_and_queries_are_joined_below_the_stage() {
        let client = unsigned("https://api.example.com/prod/");
        let url = client
            .url(
                &["images"],
                &[
                    ("name", Some("web *".to_owned())),
                    ("owner", None),
                    ("limit", Some("5".to_owned())),
                ],
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.example.com/prod/images?name=web%20%2A&limit=5"
        );
        let url = client.url(&["jobs", "a/b"], &[]).unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/prod/jobs/a%2Fb");
    }

    #[test]
    fn every_listed_error_becomes_a_message_with_its_field() {
        let body = json!({
            "error": {"code": "invalid_request", "message": "an account id must be exactly 12 digits, got \"12\"", "field": "sharing.accounts[0]"},
            "errors": [
                {"code": "invalid_request", "message": "an account id must be exactly 12 digits, got \"12\"", "field": "sharing.accounts[0]"},
                {"code": "invalid_request", "message": "name is required", "field": "name"},
                {"code": "invalid_request", "message": "the request is not JSON", "field": null}
            ]
        });
        let failure = ApiFailure::from_body(400, body.to_string().as_bytes());
        assert_eq!(
            failure.messages(),
            [
                "an account id must be exactly 12 digits, got \"12\" (field: sharing.accounts[0])",
                "name is required (field: name)",
                "the request is not JSON",
            ]
        );
    }

    #[test]
    fn a_single_error_without_a_list_is_still_read() {
        let body = r#"{"error":{"code":"not_found","message":"no job 42","field":null}}"#;
        let failure = ApiFailure::from_body(404, body.as_bytes());
        assert_eq!(failure.messages(), ["no job 42"]);
        assert_eq!(failure.errors[0].code, "not_found");
    }

    #[test]
    fn gateway_and_non_json_errors_give_readable_messages() {
        let forbidden = ApiFailure::from_body(403, br#"{"message":"Forbidden"}"#);
        let message = &forbidden.messages()[0];
        assert!(
            message.starts_with("Forbidden (the API refused"),
            "{message}"
        );
        let html = ApiFailure::from_body(502, b"<html>bad gateway</html>\n");
        assert_eq!(
            html.messages(),
            ["the API answered 502 Bad Gateway: <html>bad gateway</html>"]
        );
        let empty = ApiFailure::from_body(500, b"");
        assert_eq!(
            empty.messages(),
            ["the API answered 500 Internal Server Error"]
        );
    }

    #[test]
    fn only_network_throttling_and_server_errors_are_transient() {
        let api = |status| {
            Error::Api(ApiFailure {
                status,
                errors: Vec::new(),
            })
        };
        assert!(api(503).is_transient());
        assert!(api(429).is_transient());
        assert!(!api(404).is_transient());
        assert!(!Error::NoRegion.is_transient());
    }

    #[tokio::test]
    async fn an_error_answer_reaches_the_caller_as_api_messages() {
        let (endpoint, server) = fake_api(
            404,
            r#"{"error":{"code":"not_found","message":"no job nope","field":"job_id"},"errors":[]}"#,
        );
        let err = unsigned(&endpoint)
            .get(&["jobs", "nope"], &[])
            .await
            .unwrap_err();
        let received = server.join().unwrap();
        assert_eq!(received.request_line, "GET /prod/jobs/nope HTTP/1.1");
        assert!(!err.is_transient());
        assert_eq!(err.messages(), ["no job nope (field: job_id)"]);
    }

    #[tokio::test]
    async fn requests_are_signed_for_execute_api_in_the_region() {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .test_credentials()
            .region(Region::new("eu-west-1"))
            .load()
            .await;
        let (endpoint, server) = fake_api(200, r#"{"jobs":[],"next":null}"#);
        let base = parse_endpoint(&endpoint).unwrap();
        let auth = Auth::for_endpoint(config, &base, false).await.unwrap();
        assert!(matches!(auth, Auth::SigV4 { .. }));
        let client = Client::with_auth(base, auth, false).unwrap();
        client.get(&["jobs"], &[]).await.unwrap();

        let received = server.join().unwrap();
        let authorization = received.header("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=ANOTREAL/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/eu-west-1/execute-api/aws4_request"),
            "{authorization}"
        );
        assert!(received.header("x-amz-date").is_some());
    }

    #[tokio::test]
    async fn without_credentials_only_the_local_stack_goes_unsigned() {
        let config = || async {
            aws_config::defaults(BehaviorVersion::latest())
                .no_credentials()
                .region(Region::new("eu-west-1"))
                .load()
                .await
        };
        let local = parse_endpoint("http://127.0.0.1:9000/").unwrap();
        let auth = Auth::for_endpoint(config().await, &local, false)
            .await
            .unwrap();
        assert!(matches!(auth, Auth::Unsigned));

        let remote = parse_endpoint("https://api.example.com/prod").unwrap();
        let err = Auth::for_endpoint(config().await, &remote, false)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::Credentials(_)), "{err}");
        assert!(err.to_string().contains("--no-sign"));
    }

    #[tokio::test]
    async fn a_missing_endpoint_is_a_clear_error() {
        let err = Client::connect(&Settings::default()).await.err().unwrap();
        assert!(err.to_string().contains("AMIFORGE_ENDPOINT"), "{err}");
    }
}
