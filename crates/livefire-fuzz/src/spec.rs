//! OpenAPI 3.0 / 3.1 (and Swagger 2.0, rewritten by `swagger`) loading: JSON or YAML, from a file or a plain-HTTP URL, with every
//! `$ref` resolved (also across files), turned into a flat list of `Operation`s.
//!
//! Errors name where in the spec they are: a line and column for syntax errors, a JSON
//! pointer (`#/paths/~1items/get/parameters/0`) for structural ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::FuzzError;

/// A loaded spec: its operations, and warnings about what was skipped.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Where it came from (a path or URL), for reports.
    pub source: String,
    /// The `openapi` version string.
    pub version: String,
    pub operations: Vec<Operation>,
    /// Security schemes by name (resolved).
    pub security_schemes: HashMap<String, SecurityScheme>,
    /// Constructs that were skipped, with where they are.
    pub warnings: Vec<String>,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamIn {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: ParamIn,
    pub required: bool,
    pub schema: Value,
}

/// How a request body is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    /// Any other media type: sent as text generated from the schema.
    Raw,
}

#[derive(Debug, Clone)]
pub struct RequestBody {
    pub required: bool,
    pub media_type: String,
    pub kind: BodyKind,
    pub schema: Value,
}

/// One declared response (`"200"`, `"4XX"` or `"default"`).
#[derive(Debug, Clone)]
pub struct ResponseSpec {
    pub status: String,
    /// Media type -> schema (`None` when the media type has no schema).
    pub content: Vec<(String, Option<Value>)>,
    pub links: Vec<Link>,
}

/// An OpenAPI link: values from this response feed parameters of another operation.
#[derive(Debug, Clone)]
pub struct Link {
    pub operation_id: String,
    /// Parameter name -> runtime expression (`$response.body#/id`) or constant.
    pub parameters: Vec<(String, Value)>,
}

#[derive(Debug, Clone)]
pub enum SecurityScheme {
    /// `type: http` (bearer, basic, ...).
    Http { scheme: String },
    /// `type: apiKey`.
    ApiKey { name: String, location: ParamIn },
    /// oauth2 / openIdConnect / mutualTLS: credentials travel as a bearer token.
    Other,
}

#[derive(Debug, Clone)]
pub struct Operation {
    /// `operationId`, or the name when there is none.
    pub id: String,
    /// `GET /items/{itemId}`: how findings name the operation.
    pub name: String,
    pub method: http::Method,
    pub path: String,
    pub params: Vec<Param>,
    pub body: Option<RequestBody>,
    pub responses: Vec<ResponseSpec>,
    /// Scheme names of the security requirement (empty when the operation is open).
    pub security: Vec<String>,
    /// Where the operation is in the spec, for warnings.
    pub pointer: String,
}

impl Operation {
    /// Whether every way to call this operation needs credentials.
    pub fn secured(&self) -> bool {
        !self.security.is_empty()
    }

    /// The declared response matching a status: exact, then `NXX`, then `default`.
    pub fn response_for(&self, status: u16) -> Option<&ResponseSpec> {
        let exact = status.to_string();
        let range = format!("{}XX", status / 100);
        self.responses
            .iter()
            .find(|r| r.status == exact)
            .or_else(|| {
                self.responses
                    .iter()
                    .find(|r| r.status.eq_ignore_ascii_case(&range))
            })
            .or_else(|| self.responses.iter().find(|r| r.status == "default"))
    }
}

/// Loads a spec from a file path or an `http://` URL.
pub async fn load(source: &str) -> Result<Spec, FuzzError> {
    let mut loader = Loader {
        docs: HashMap::new(),
        nodes: 0,
    };
    let location = if source.starts_with("http://") || source.starts_with("https://") {
        source.to_string()
    } else {
        std::fs::canonicalize(source)
            .map_err(|e| FuzzError::SpecRead {
                spec: source.to_string(),
                reason: e.to_string(),
            })?
            .to_string_lossy()
            .into_owned()
    };
    let root = loader.doc(&location, source).await?;
    let swagger = crate::swagger::is_swagger(&root);
    let root = if swagger {
        // `$ref`s into the document must see the converted one.
        let converted = Arc::new(crate::swagger::convert(&root)?);
        loader.docs.insert(location.clone(), converted.clone());
        converted
    } else {
        root
    };
    let mut spec = build(&mut loader, &location, &root).await?;
    spec.source = source.to_string();
    if swagger {
        spec.version = "2.0".into();
    }
    Ok(spec)
}

/// Parses a spec from text (JSON or YAML); relative `$ref`s resolve against `base_dir`.
pub async fn parse_str(text: &str, base_dir: &Path) -> Result<Spec, FuzzError> {
    let location = base_dir
        .join("(inline spec)")
        .to_string_lossy()
        .into_owned();
    let root = parse_text(text, "(inline spec)")?;
    let swagger = crate::swagger::is_swagger(&root);
    let root = if swagger {
        crate::swagger::convert(&root)?
    } else {
        root
    };
    let mut loader = Loader {
        docs: HashMap::from([(location.clone(), Arc::new(root.clone()))]),
        nodes: 0,
    };
    let mut spec = build(&mut loader, &location, &root).await?;
    spec.source = "(inline spec)".into();
    if swagger {
        spec.version = "2.0".into();
    }
    Ok(spec)
}

fn spec_err(location: &str, pointer: &str, message: impl Into<String>) -> FuzzError {
    FuzzError::Spec {
        location: format!("{location}{pointer}"),
        message: message.into(),
    }
}

fn parse_text(text: &str, location: &str) -> Result<Value, FuzzError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|e| FuzzError::Spec {
            location: format!("{location}:{}:{}", e.line(), e.column()),
            message: format!("invalid JSON: {e}"),
        })
    } else {
        let value: Value = serde_norway::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            FuzzError::Spec {
                location: format!("{location}{at}"),
                message: format!("invalid YAML: {e}"),
            }
        })?;
        Ok(value)
    }
}

struct Loader {
    docs: HashMap<String, Arc<Value>>,
    /// Values produced by inlining so far: references that fan out (each schema
    /// referring to the next twice) would otherwise grow without bound.
    nodes: usize,
}

/// The most values a spec may expand to once every `$ref` is inlined.
const MAX_NODES: usize = 1_000_000;

impl Loader {
    async fn doc(&mut self, location: &str, shown: &str) -> Result<Arc<Value>, FuzzError> {
        if let Some(doc) = self.docs.get(location) {
            return Ok(doc.clone());
        }
        let text = if location.starts_with("http://") || location.starts_with("https://") {
            fetch(location).await?
        } else {
            std::fs::read_to_string(location).map_err(|e| FuzzError::SpecRead {
                spec: shown.to_string(),
                reason: e.to_string(),
            })?
        };
        let doc = Arc::new(parse_text(&text, shown)?);
        self.docs.insert(location.to_string(), doc.clone());
        Ok(doc)
    }
}

/// Fetches a document over plain HTTP (32 MiB and 15 s at most).
async fn fetch(url: &str) -> Result<String, FuzzError> {
    let err = |reason: String| FuzzError::SpecRead {
        spec: url.to_string(),
        reason,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| err(format!("not a valid URL: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(err(
            "only plain http:// URLs can be fetched; download the spec and pass the file".into(),
        ));
    }
    let target = crate::http::Target::from_base_url(url).map_err(|e| err(e.to_string()))?;
    let mut client = crate::http::Client::new(target, Duration::from_secs(15), 32 << 20);
    let req = crate::http::Prepared {
        method: http::Method::GET,
        path_and_query: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "/".into()),
        headers: vec![(
            "accept".into(),
            "application/json, application/yaml, */*".into(),
        )],
        body: bytes::Bytes::new(),
    };
    match client.send(&req).await {
        crate::http::Outcome::Response(resp) if resp.status == 200 => {
            if resp.truncated {
                return Err(err("the spec is larger than 32 MiB".into()));
            }
            Ok(String::from_utf8_lossy(&resp.body).into_owned())
        }
        crate::http::Outcome::Response(resp) => {
            Err(err(format!("the server answered {}", resp.status)))
        }
        crate::http::Outcome::Failed { error, .. } => Err(err(error.to_string())),
    }
}

fn join(base: &str, relative: &str) -> String {
    if relative.starts_with("http://") || relative.starts_with("https://") {
        return relative.to_string();
    }
    if let Some(rest) = base.strip_prefix("http://") {
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = if relative.starts_with('/') {
            relative.trim_start_matches('/').to_string()
        } else {
            let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            normalize(&format!("{dir}/{relative}"))
        };
        return format!("http://{host}/{}", path.trim_start_matches('/'));
    }
    let base = PathBuf::from(base);
    let dir = base.parent().map(Path::to_path_buf).unwrap_or_default();
    normalize(&dir.join(relative).to_string_lossy())
}

fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn pointer_get<'a>(doc: &'a Value, fragment: &str) -> Option<&'a Value> {
    let fragment = percent_encoding::percent_decode_str(fragment)
        .decode_utf8_lossy()
        .into_owned();
    if fragment.is_empty() {
        return Some(doc);
    }
    doc.pointer(&fragment)
}

/// Inlines every `$ref` below `value`. A reference that refers back to itself (a
/// recursive schema) becomes `{}` (any value) at the second visit.
fn resolve<'a>(
    loader: &'a mut Loader,
    value: &'a Value,
    doc_loc: &'a str,
    pointer: String,
    stack: &'a mut Vec<String>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, FuzzError>> + Send + 'a>> {
    Box::pin(async move {
        loader.nodes += 1;
        if loader.nodes > MAX_NODES {
            return Err(spec_err(
                "",
                &format!("#{pointer}"),
                "the spec expands to more than 1,000,000 values once $refs are inlined; simplify its references",
            ));
        }
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref") {
                    let Some(reference) = reference.as_str() else {
                        return Err(spec_err("", &pointer, "$ref must be a string"));
                    };
                    let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
                    let target_loc = if file.is_empty() {
                        doc_loc.to_string()
                    } else {
                        join(doc_loc, file)
                    };
                    let key = format!("{target_loc}#{fragment}");
                    if stack.contains(&key) || stack.len() > 64 {
                        return Ok(Value::Object(Map::new()));
                    }
                    let doc = loader
                        .doc(&target_loc, file)
                        .await
                        .map_err(|e| FuzzError::Spec {
                            location: format!("#{pointer}"),
                            message: format!("cannot resolve $ref \"{reference}\": {e}"),
                        })?;
                    let Some(target) = pointer_get(&doc, fragment).cloned() else {
                        return Err(FuzzError::Spec {
                            location: format!("#{pointer}"),
                            message: format!(
                                "cannot resolve $ref \"{reference}\": nothing at \"#{fragment}\" in {}",
                                if file.is_empty() {
                                    "this document"
                                } else {
                                    file
                                }
                            ),
                        });
                    };
                    stack.push(key);
                    let resolved =
                        resolve(loader, &target, &target_loc, pointer.clone(), stack).await;
                    stack.pop();
                    let mut resolved = resolved?;
                    // OpenAPI 3.1 allows keywords beside $ref; they apply too.
                    if let Value::Object(out) = &mut resolved {
                        for (k, v) in map.iter().filter(|(k, _)| *k != "$ref") {
                            let v = resolve(
                                loader,
                                v,
                                doc_loc,
                                format!("{pointer}/{}", escape(k)),
                                stack,
                            )
                            .await?;
                            out.insert(k.clone(), v);
                        }
                    }
                    return Ok(resolved);
                }
                let mut out = Map::new();
                for (k, v) in map {
                    let v = resolve(
                        loader,
                        v,
                        doc_loc,
                        format!("{pointer}/{}", escape(k)),
                        stack,
                    )
                    .await?;
                    out.insert(k.clone(), v);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    out.push(resolve(loader, v, doc_loc, format!("{pointer}/{i}"), stack).await?);
                }
                Ok(Value::Array(out))
            }
            other => Ok(other.clone()),
        }
    })
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn build(loader: &mut Loader, location: &str, root: &Value) -> Result<Spec, FuzzError> {
    let Some(obj) = root.as_object() else {
        return Err(spec_err(
            "",
            "#",
            "the spec must be a mapping with an `openapi` field",
        ));
    };
    let version = match obj.get("openapi") {
        Some(Value::String(v)) if v.starts_with("3.0") || v.starts_with("3.1") => v.clone(),
        Some(v) => {
            return Err(spec_err(
                "",
                "#/openapi",
                format!("unsupported OpenAPI version {v}: livefire reads 3.0 and 3.1"),
            ));
        }
        None => {
            return Err(spec_err(
                "",
                "#",
                "missing `openapi` field: is this an OpenAPI 3 document?",
            ));
        }
    };
    let mut warnings = Vec::new();
    let mut stack = Vec::new();

    let mut security_schemes = HashMap::new();
    if let Some(schemes) = obj.get("components").and_then(|c| c.get("securitySchemes")) {
        let schemes = resolve(
            loader,
            schemes,
            location,
            "/components/securitySchemes".into(),
            &mut stack,
        )
        .await?;
        for (name, s) in schemes.as_object().into_iter().flatten() {
            let scheme = match s.get("type").and_then(Value::as_str) {
                Some("http") => SecurityScheme::Http {
                    scheme: s
                        .get("scheme")
                        .and_then(Value::as_str)
                        .unwrap_or("bearer")
                        .to_ascii_lowercase(),
                },
                Some("apiKey") => {
                    let location = match s.get("in").and_then(Value::as_str) {
                        Some("query") => ParamIn::Query,
                        Some("cookie") => ParamIn::Cookie,
                        _ => ParamIn::Header,
                    };
                    let name = s
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("X-API-Key")
                        .to_string();
                    SecurityScheme::ApiKey { name, location }
                }
                _ => SecurityScheme::Other,
            };
            security_schemes.insert(name.clone(), scheme);
        }
    }
    let global_security = obj.get("security").cloned();

    let paths = match obj.get("paths") {
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return Err(spec_err("", "#/paths", "`paths` must be a mapping")),
        None => Map::new(),
    };
    let mut operations = Vec::new();
    for (path, item) in &paths {
        let item_ptr = format!("/paths/{}", escape(path));
        if !path.starts_with('/') {
            return Err(spec_err(
                "",
                &format!("#{item_ptr}"),
                format!("path \"{path}\" must start with /"),
            ));
        }
        let item = resolve(loader, item, location, item_ptr.clone(), &mut stack).await?;
        let Some(item) = item.as_object() else {
            return Err(spec_err(
                "",
                &format!("#{item_ptr}"),
                "a path item must be a mapping",
            ));
        };
        let shared = parse_params(
            item.get("parameters"),
            &format!("{item_ptr}/parameters"),
            &mut warnings,
        )?;
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let ptr = format!("{item_ptr}/{method}");
            let Some(op) = op.as_object() else {
                return Err(spec_err(
                    "",
                    &format!("#{ptr}"),
                    "an operation must be a mapping",
                ));
            };
            let mut params = shared.clone();
            for p in parse_params(
                op.get("parameters"),
                &format!("{ptr}/parameters"),
                &mut warnings,
            )? {
                params.retain(|q: &Param| !(q.name == p.name && q.location == p.location));
                params.push(p);
            }
            // Every templated path segment needs a path parameter.
            for segment in path
                .split('/')
                .filter(|s| s.starts_with('{') && s.ends_with('}'))
            {
                let name = &segment[1..segment.len() - 1];
                if !params
                    .iter()
                    .any(|p| p.location == ParamIn::Path && p.name == name)
                {
                    params.push(Param {
                        name: name.to_string(),
                        location: ParamIn::Path,
                        required: true,
                        schema: serde_json::json!({ "type": "string" }),
                    });
                    warnings.push(format!(
                        "#{ptr}: path parameter {{{name}}} is not declared; sending strings"
                    ));
                }
            }
            let name = format!("{} {path}", method.to_ascii_uppercase());
            let body = match op.get("requestBody") {
                None => None,
                Some(b) => match parse_body(b) {
                    Ok(b) => b,
                    Err(why) => {
                        warnings.push(format!(
                            "#{ptr}/requestBody: {why}; operation {name} skipped"
                        ));
                        continue;
                    }
                },
            };
            let mut responses = Vec::new();
            if let Some(rs) = op.get("responses").and_then(Value::as_object) {
                for (status, r) in rs {
                    let mut content = Vec::new();
                    for (media, m) in r
                        .get("content")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                    {
                        content.push((media.to_ascii_lowercase(), m.get("schema").cloned()));
                    }
                    let mut links = Vec::new();
                    for (_, l) in r
                        .get("links")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(op_id) = l.get("operationId").and_then(Value::as_str) {
                            let parameters = l
                                .get("parameters")
                                .and_then(Value::as_object)
                                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                                .unwrap_or_default();
                            links.push(Link {
                                operation_id: op_id.to_string(),
                                parameters,
                            });
                        }
                    }
                    responses.push(ResponseSpec {
                        status: status.to_ascii_uppercase(),
                        content,
                        links,
                    });
                }
            } else {
                return Err(spec_err(
                    "",
                    &format!("#{ptr}"),
                    "operation has no `responses` mapping",
                ));
            }
            let security_value = op
                .get("security")
                .cloned()
                .or_else(|| global_security.clone());
            let security = security_names(security_value.as_ref());
            let method_value = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .unwrap_or(http::Method::GET);
            operations.push(Operation {
                id: op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .unwrap_or_else(|| name.clone()),
                name,
                method: method_value,
                path: path.clone(),
                params,
                body,
                responses,
                security,
                pointer: format!("#{ptr}"),
            });
        }
    }
    if operations.is_empty() {
        return Err(spec_err(
            "",
            "#/paths",
            "the spec declares no operations to fuzz",
        ));
    }
    Ok(Spec {
        source: String::new(),
        version,
        operations,
        security_schemes,
        warnings,
    })
}

/// The scheme names an operation requires; empty when any alternative needs none.
fn security_names(value: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(reqs)) = value else {
        return Vec::new();
    };
    if reqs.is_empty()
        || reqs
            .iter()
            .any(|r| r.as_object().is_none_or(|m| m.is_empty()))
    {
        return Vec::new();
    }
    let mut names: Vec<String> = reqs
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|m| m.keys().cloned())
        .collect();
    names.dedup();
    names
}

fn parse_params(
    value: Option<&Value>,
    ptr: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<Param>, FuzzError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Some(list) = value.as_array() else {
        return Err(spec_err(
            "",
            &format!("#{ptr}"),
            "`parameters` must be a list",
        ));
    };
    let mut out = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let here = format!("#{ptr}/{i}");
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            return Err(spec_err("", &here, "parameter has no `name`"));
        };
        let location = match p.get("in").and_then(Value::as_str) {
            Some("path") => ParamIn::Path,
            Some("query") => ParamIn::Query,
            Some("header") => ParamIn::Header,
            Some("cookie") => ParamIn::Cookie,
            Some(other) => {
                return Err(spec_err(
                    "",
                    &here,
                    format!("parameter `in: {other}` is not one of path, query, header, cookie"),
                ));
            }
            None => return Err(spec_err("", &here, "parameter has no `in`")),
        };
        let schema = match (p.get("schema"), p.get("content")) {
            (Some(s), _) => s.clone(),
            (None, Some(c)) => match c
                .as_object()
                .and_then(|m| m.values().next())
                .and_then(|m| m.get("schema"))
            {
                Some(s) => s.clone(),
                None => serde_json::json!({ "type": "string" }),
            },
            (None, None) => {
                warnings.push(format!(
                    "{here}: parameter {name} has no schema; sending strings"
                ));
                serde_json::json!({ "type": "string" })
            }
        };
        let required = location == ParamIn::Path
            || p.get("required").and_then(Value::as_bool).unwrap_or(false);
        out.push(Param {
            name: name.to_string(),
            location,
            required,
            schema,
        });
    }
    Ok(out)
}

/// A required request body in a media type the fuzzer cannot generate: the operation is
/// skipped with a warning.
#[derive(Debug, thiserror::Error)]
#[error("request body media type {0} is not supported")]
struct UnsupportedMedia(String);

fn parse_body(value: &Value) -> Result<Option<RequestBody>, UnsupportedMedia> {
    let required = value
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(content) = value.get("content").and_then(Value::as_object) else {
        return Ok(None);
    };
    let pick =
        |want: &dyn Fn(&str) -> bool| content.iter().find(|(m, _)| want(&m.to_ascii_lowercase()));
    let any = serde_json::json!({});
    if let Some((media, m)) =
        pick(&|m| m == "application/json" || m.ends_with("+json") || m == "*/*")
    {
        let media = if media == "*/*" {
            "application/json".to_string()
        } else {
            media.clone()
        };
        let schema = m.get("schema").cloned().unwrap_or(any);
        return Ok(Some(RequestBody {
            required,
            media_type: media,
            kind: BodyKind::Json,
            schema,
        }));
    }
    if let Some((media, m)) = pick(&|m| m == "application/x-www-form-urlencoded") {
        let schema = m.get("schema").cloned().unwrap_or(any);
        return Ok(Some(RequestBody {
            required,
            media_type: media.clone(),
            kind: BodyKind::Form,
            schema,
        }));
    }
    if let Some((media, m)) =
        pick(&|m| m.starts_with("text/") || m == "application/octet-stream" || m.ends_with("/xml"))
    {
        let schema = m
            .get("schema")
            .cloned()
            .unwrap_or(serde_json::json!({ "type": "string" }));
        return Ok(Some(RequestBody {
            required,
            media_type: media.clone(),
            kind: BodyKind::Raw,
            schema,
        }));
    }
    match content.keys().next() {
        Some(media) if required => Err(UnsupportedMedia(media.clone())),
        _ => Ok(None),
    }
}
