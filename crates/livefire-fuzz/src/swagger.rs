//! Swagger 2.0 read as OpenAPI 3.0: the document is rewritten once, before `$ref`s are
//! resolved, so the rest of `spec` only ever sees OpenAPI 3.
//!
//! What moves where: `host`/`basePath`/`schemes` become `servers`; `definitions`,
//! `parameters`, `responses` and `securityDefinitions` move under `components` (and every
//! `#/definitions/...` reference follows); an `in: body` parameter becomes the
//! `requestBody` for each of `consumes`; `in: formData` parameters become one form body;
//! the `type`/`format`/`items`/`enum`/... of other parameters become their `schema`; a
//! response's `schema` becomes `content` for each of `produces`. Errors are located by
//! the JSON pointer of the Swagger document.

use serde_json::{Map, Value, json};

use crate::error::FuzzError;

/// Keywords of a Swagger 2.0 non-body parameter that describe its value.
const SCHEMA_KEYS: [&str; 16] = [
    "type",
    "format",
    "items",
    "enum",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
];

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

fn err(pointer: &str, message: impl Into<String>) -> FuzzError {
    FuzzError::Spec {
        location: format!("#{pointer}"),
        message: message.into(),
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Whether a parsed document is Swagger 2.0 (has a `swagger` field).
pub fn is_swagger(doc: &Value) -> bool {
    doc.get("swagger").is_some()
}

/// Rewrites a Swagger 2.0 document as an OpenAPI 3.0.3 one.
pub fn convert(doc: &Value) -> Result<Value, FuzzError> {
    let Some(root) = doc.as_object() else {
        return Err(err("", "the spec must be a mapping"));
    };
    match root.get("swagger") {
        Some(Value::String(v)) if v == "2.0" => {}
        Some(v) => {
            return Err(err(
                "/swagger",
                format!("unsupported Swagger version {v}: livefire reads 2.0, 3.0 and 3.1"),
            ));
        }
        None => return Err(err("", "missing `swagger` field")),
    }
    // References are rewritten first, so everything copied below already points at
    // the OpenAPI 3 places.
    let doc = rewrite_refs(doc);
    let root = doc.as_object().cloned().unwrap_or_default();

    let consumes = media_list(root.get("consumes"), "/consumes")?;
    let produces = media_list(root.get("produces"), "/produces")?;
    let shared_params = root
        .get("parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let shared_responses = root
        .get("responses")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();

    let mut out = Map::new();
    out.insert("openapi".into(), json!("3.0.3"));
    if let Some(info) = root.get("info") {
        out.insert("info".into(), info.clone());
    }
    if let Some(host) = root.get("host").and_then(Value::as_str) {
        let base = root.get("basePath").and_then(Value::as_str).unwrap_or("");
        let schemes: Vec<&str> = root
            .get("schemes")
            .and_then(Value::as_array)
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let schemes = if schemes.is_empty() {
            vec!["http"]
        } else {
            schemes
        };
        let servers: Vec<Value> = schemes
            .iter()
            .map(|s| json!({ "url": format!("{s}://{host}{}", base.trim_end_matches('/')) }))
            .collect();
        out.insert("servers".into(), Value::Array(servers));
    }
    if let Some(security) = root.get("security") {
        out.insert("security".into(), security.clone());
    }

    let mut components = Map::new();
    if let Some(defs) = root.get("definitions") {
        if !defs.is_object() {
            return Err(err("/definitions", "`definitions` must be a mapping"));
        }
        components.insert("schemas".into(), defs.clone());
    }
    if let Some(defs) = root.get("securityDefinitions") {
        let Some(defs) = defs.as_object() else {
            return Err(err(
                "/securityDefinitions",
                "`securityDefinitions` must be a mapping",
            ));
        };
        let mut schemes = Map::new();
        for (name, d) in defs {
            schemes.insert(
                name.clone(),
                security_scheme(d, &format!("/securityDefinitions/{}", escape(name)))?,
            );
        }
        components.insert("securitySchemes".into(), Value::Object(schemes));
    }
    if !components.is_empty() {
        out.insert("components".into(), Value::Object(components));
    }

    let mut paths = Map::new();
    let src_paths = match root.get("paths") {
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return Err(err("/paths", "`paths` must be a mapping")),
        None => Map::new(),
    };
    for (path, item) in &src_paths {
        let item_ptr = format!("/paths/{}", escape(path));
        let Some(item) = item.as_object() else {
            return Err(err(&item_ptr, "a path item must be a mapping"));
        };
        if item.contains_key("$ref") {
            return Err(err(
                &format!("{item_ptr}/$ref"),
                "a path item given by $ref is not supported in Swagger 2.0 documents; inline it",
            ));
        }
        let path_params = raw_params(item.get("parameters"), &shared_params, &item_ptr)?;
        let mut new_item = Map::new();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let ptr = format!("{item_ptr}/{method}");
            let Some(op) = op.as_object() else {
                return Err(err(&ptr, "an operation must be a mapping"));
            };
            let mut params = path_params.clone();
            for (p, at) in raw_params(op.get("parameters"), &shared_params, &ptr)? {
                params.retain(|(q, _)| {
                    !(q.get("name") == p.get("name") && q.get("in") == p.get("in"))
                });
                params.push((p, at));
            }
            let consumes = match op.get("consumes") {
                Some(c) => media_list(Some(c), &format!("{ptr}/consumes"))?,
                None => consumes.clone(),
            };
            let produces = match op.get("produces") {
                Some(c) => media_list(Some(c), &format!("{ptr}/produces"))?,
                None => produces.clone(),
            };
            let mut new_op = Map::new();
            for key in [
                "operationId",
                "summary",
                "description",
                "tags",
                "security",
                "deprecated",
            ] {
                if let Some(v) = op.get(key) {
                    new_op.insert(key.into(), v.clone());
                }
            }
            let mut plain = Vec::new();
            let mut body: Option<Value> = None;
            let mut form = Map::new();
            let mut form_required = Vec::new();
            let mut has_file = false;
            for (p, at) in params {
                match p.get("in").and_then(Value::as_str) {
                    Some("body") => {
                        let schema = p.get("schema").cloned().unwrap_or_else(|| json!({}));
                        let media = if consumes.is_empty() {
                            vec!["application/json".to_string()]
                        } else {
                            consumes.clone()
                        };
                        let content: Map<String, Value> = media
                            .into_iter()
                            .map(|m| (m, json!({ "schema": schema })))
                            .collect();
                        let mut b = Map::new();
                        b.insert("content".into(), Value::Object(content));
                        if let Some(r) = p.get("required") {
                            b.insert("required".into(), r.clone());
                        }
                        body = Some(Value::Object(b));
                    }
                    Some("formData") => {
                        let Some(name) = p.get("name").and_then(Value::as_str) else {
                            return Err(err(&at, "parameter has no `name`"));
                        };
                        if p.get("type").and_then(Value::as_str) == Some("file") {
                            has_file = true;
                        }
                        form.insert(name.to_string(), value_schema(&p));
                        if p.get("required").and_then(Value::as_bool) == Some(true) {
                            form_required.push(json!(name));
                        }
                    }
                    Some(_) => {
                        let mut q = Map::new();
                        for key in ["name", "in", "required", "description"] {
                            if let Some(v) = p.get(key) {
                                q.insert(key.into(), v.clone());
                            }
                        }
                        q.insert("schema".into(), value_schema(&p));
                        plain.push(Value::Object(q));
                    }
                    None => return Err(err(&at, "parameter has no `in`")),
                }
            }
            if body.is_none() && !form.is_empty() {
                let multipart = consumes.iter().any(|m| m == "multipart/form-data")
                    && !consumes
                        .iter()
                        .any(|m| m == "application/x-www-form-urlencoded");
                let media = if has_file || multipart {
                    "multipart/form-data"
                } else {
                    "application/x-www-form-urlencoded"
                };
                let mut schema = json!({ "type": "object", "properties": form });
                if !form_required.is_empty() {
                    schema["required"] = Value::Array(form_required.clone());
                }
                body = Some(json!({
                    "required": !form_required.is_empty(),
                    "content": { media: { "schema": schema } },
                }));
            }
            if !plain.is_empty() {
                new_op.insert("parameters".into(), Value::Array(plain));
            }
            if let Some(b) = body {
                new_op.insert("requestBody".into(), b);
            }
            let responses = match op.get("responses") {
                Some(Value::Object(r)) => r,
                Some(_) => {
                    return Err(err(
                        &format!("{ptr}/responses"),
                        "`responses` must be a mapping",
                    ));
                }
                None => return Err(err(&ptr, "operation has no `responses` mapping")),
            };
            let mut new_responses = Map::new();
            for (status, r) in responses {
                let at = format!("{ptr}/responses/{}", escape(status));
                let r = local(r, "#/responses/", &shared_responses, &at)?;
                let mut new_r = Map::new();
                new_r.insert(
                    "description".into(),
                    r.get("description").cloned().unwrap_or_else(|| json!("")),
                );
                if let Some(schema) = r.get("schema") {
                    let media = if produces.is_empty() {
                        vec!["application/json".to_string()]
                    } else {
                        produces.clone()
                    };
                    let content: Map<String, Value> = media
                        .into_iter()
                        .map(|m| (m, json!({ "schema": schema })))
                        .collect();
                    new_r.insert("content".into(), Value::Object(content));
                } else if !produces.is_empty() {
                    let content: Map<String, Value> =
                        produces.iter().map(|m| (m.clone(), json!({}))).collect();
                    new_r.insert("content".into(), Value::Object(content));
                }
                if let Some(h) = r.get("headers") {
                    new_r.insert("headers".into(), h.clone());
                }
                new_responses.insert(status.clone(), Value::Object(new_r));
            }
            new_op.insert("responses".into(), Value::Object(new_responses));
            new_item.insert(method.into(), Value::Object(new_op));
        }
        paths.insert(path.clone(), Value::Object(new_item));
    }
    out.insert("paths".into(), Value::Object(paths));
    Ok(Value::Object(out))
}

/// `#/definitions/X` -> `#/components/schemas/X`, everywhere in the document.
fn rewrite_refs(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => Value::String(rewrite_ref(r)),
                        _ => rewrite_refs(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(rewrite_refs).collect()),
        other => other.clone(),
    }
}

fn rewrite_ref(r: &str) -> String {
    match r.split_once("#/definitions/") {
        Some((file, name)) => format!("{file}#/components/schemas/{name}"),
        None => r.to_string(),
    }
}

/// A list of media types (`consumes`, `produces`).
fn media_list(value: Option<&Value>, pointer: &str) -> Result<Vec<String>, FuzzError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(&format!("{pointer}/{i}"), "a media type must be a string"))
            })
            .collect(),
        Some(_) => Err(err(pointer, "must be a list of media types")),
    }
}

/// Follows a `$ref` to a shared top-level entry (`#/parameters/X`, `#/responses/X`).
fn local(
    value: &Value,
    prefix: &str,
    shared: &Map<String, Value>,
    at: &str,
) -> Result<Value, FuzzError> {
    let Some(r) = value.get("$ref").and_then(Value::as_str) else {
        return Ok(value.clone());
    };
    let Some(name) = r.strip_prefix(prefix) else {
        return Err(err(
            &format!("{at}/$ref"),
            format!("cannot read $ref \"{r}\" here: only {prefix}NAME of this document"),
        ));
    };
    let name = name.replace("~1", "/").replace("~0", "~");
    shared.get(&name).cloned().ok_or_else(|| {
        err(
            &format!("{at}/$ref"),
            format!("cannot resolve $ref \"{r}\": nothing at \"{prefix}{name}\""),
        )
    })
}

/// The parameters of a path item or operation, shared ones inlined, with where each is.
fn raw_params(
    value: Option<&Value>,
    shared: &Map<String, Value>,
    ptr: &str,
) -> Result<Vec<(Value, String)>, FuzzError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Some(list) = value.as_array() else {
        return Err(err(
            &format!("{ptr}/parameters"),
            "`parameters` must be a list",
        ));
    };
    let mut out = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let at = format!("{ptr}/parameters/{i}");
        let p = local(p, "#/parameters/", shared, &at)?;
        if !p.is_object() {
            return Err(err(&at, "a parameter must be a mapping"));
        }
        if let Some(other) = p.get("in").and_then(Value::as_str)
            && !["path", "query", "header", "body", "formData"].contains(&other)
        {
            return Err(err(
                &format!("{at}/in"),
                format!(
                    "parameter `in: {other}` is not one of path, query, header, body, formData"
                ),
            ));
        }
        out.push((p, at));
    }
    Ok(out)
}

/// The schema of a non-body parameter, from its value keywords (`type: file` is a
/// binary string; a parameter without a type is a string). A type given by one of the
/// common names of Swagger 2.0's data type table (`int`, `long`, `float`, `double`,
/// `bool`), as generated documents such as httpbin's do, is read as its type rather than
/// as no type at all, so its values are generated as numbers.
fn value_schema(p: &Value) -> Value {
    let mut schema = Map::new();
    for key in SCHEMA_KEYS {
        if let Some(v) = p.get(key) {
            let v = if key == "items" {
                item_schema(v)
            } else {
                v.clone()
            };
            schema.insert(key.into(), v);
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("file") => {
            schema.insert("type".into(), json!("string"));
            schema.insert("format".into(), json!("binary"));
        }
        None => {
            schema.insert("type".into(), json!("string"));
        }
        Some("int" | "long") => {
            schema.insert("type".into(), json!("integer"));
        }
        Some("float" | "double") => {
            schema.insert("type".into(), json!("number"));
        }
        Some("bool") => {
            schema.insert("type".into(), json!("boolean"));
        }
        Some(_) => {}
    }
    Value::Object(schema)
}

/// `items` of an array parameter: the same value keywords, nested.
fn item_schema(items: &Value) -> Value {
    if items.get("$ref").is_some() || !items.is_object() {
        return items.clone();
    }
    value_schema(items)
}

fn security_scheme(d: &Value, pointer: &str) -> Result<Value, FuzzError> {
    match d.get("type").and_then(Value::as_str) {
        Some("basic") => Ok(json!({ "type": "http", "scheme": "basic" })),
        Some("apiKey") => {
            let name = d.get("name").cloned().unwrap_or_else(|| json!("X-API-Key"));
            let location = d.get("in").cloned().unwrap_or_else(|| json!("header"));
            Ok(json!({ "type": "apiKey", "name": name, "in": location }))
        }
        Some("oauth2") => Ok(json!({ "type": "oauth2", "flows": {} })),
        Some(other) => Err(err(
            &format!("{pointer}/type"),
            format!("security type `{other}` is not one of basic, apiKey, oauth2"),
        )),
        None => Err(err(pointer, "security definition has no `type`")),
    }
}
