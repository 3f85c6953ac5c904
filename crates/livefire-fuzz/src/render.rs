//! Turning a generated `Case` into bytes on the wire, and into a `curl` reproducer.

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::generate::{Case, CaseBody, text};
use crate::http::{Prepared, Target};
use crate::spec::{Operation, ParamIn};

/// Characters left as they are in a path segment or a query component.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Header values must be visible ASCII; anything else is percent-encoded.
fn header_safe(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        s.trim().to_string()
    } else {
        enc(s)
    }
}

/// Renders `case` of `op` for `target`, with `auth` headers added (already chosen for
/// the case's credentials).
pub fn render(case: &Case, op: &Operation, target: &Target, auth: &[(String, String)]) -> Prepared {
    let mut path = op.path.clone();
    let mut query = Vec::new();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut cookies = Vec::new();
    for (location, name, value) in &case.params {
        match location {
            ParamIn::Path => {
                let mut v = enc(&text(value));
                if v.is_empty() {
                    // An empty segment would change the route; send an explicit marker.
                    v = "%20".into();
                }
                path = path.replace(&format!("{{{name}}}"), &v);
            }
            ParamIn::Query => match value {
                serde_json::Value::Array(items) => {
                    for item in items {
                        query.push(format!("{}={}", enc(name), enc(&text(item))));
                    }
                }
                v => query.push(format!("{}={}", enc(name), enc(&text(v)))),
            },
            ParamIn::Header => headers.push((name.clone(), header_safe(&text(value)))),
            ParamIn::Cookie => cookies.push(format!("{}={}", enc(name), enc(&text(value)))),
        }
    }
    // Path templates whose parameter was left out still need a segment.
    while let (Some(a), Some(b)) = (path.find('{'), path.find('}')) {
        if b < a {
            break;
        }
        path.replace_range(a..=b, "1");
    }
    if !cookies.is_empty() {
        headers.push(("cookie".into(), cookies.join("; ")));
    }
    let body = match &case.body {
        None => Bytes::new(),
        Some(CaseBody::Json(v)) => {
            headers.push((
                "content-type".into(),
                op.body
                    .as_ref()
                    .map_or("application/json".into(), |b| b.media_type.clone()),
            ));
            Bytes::from(serde_json::to_vec(v).unwrap_or_default())
        }
        Some(CaseBody::Form(pairs)) => {
            headers.push((
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
            let s: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect();
            Bytes::from(s.join("&"))
        }
        Some(CaseBody::Raw {
            content_type,
            bytes,
        }) => {
            headers.push(("content-type".into(), content_type.clone()));
            bytes.clone()
        }
    };
    headers.extend(auth.iter().cloned());
    let mut path_and_query = format!("{}{}", target.base_path, path);
    if !query.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&query.join("&"));
    }
    Prepared {
        method: case.method.clone(),
        path_and_query,
        headers,
        body,
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// One shell word that means `s`, with every secret of `secrets` (value, environment
/// variable) written as `"${NAME}"` for the shell to fill in: `'Bearer '"${API_TOKEN}"`.
/// The rest stays single-quoted, where no character is special (in double quotes an
/// interactive bash would still expand `!`).
pub fn shell_word(s: &str, secrets: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    loop {
        // The earliest secret in what is left, the longest one at that place.
        let next = secrets
            .iter()
            .filter(|(value, name)| !value.is_empty() && is_shell_name(name))
            .filter_map(|(value, name)| rest.find(value.as_str()).map(|at| (at, value, name)))
            .min_by_key(|(at, value, _)| (*at, std::cmp::Reverse(value.len())));
        let Some((at, value, name)) = next else {
            break;
        };
        if at > 0 {
            out.push_str(&shell_quote(&rest[..at]));
        }
        out.push_str(&format!("\"${{{name}}}\""));
        rest = &rest[at + value.len()..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push_str(&shell_quote(rest));
    }
    out
}

/// A name a POSIX shell expands as `${NAME}`.
fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The environment variables a reproducer reads, in order, each once.
fn secret_names<'a>(parts: &[String], secrets: &'a [(String, String)]) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    for (_, name) in secrets {
        let word = format!("\"${{{name}}}\"");
        if parts.iter().any(|p| p.contains(&word)) && !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names
}

/// A `curl` command that sends the same request. Bodies over 4 KiB are abbreviated
/// as a `printf`/`head` pipeline so the reproducer stays readable. Secrets
/// (`Target::secrets`) are read from the environment: the command starts with a check
/// that says which variable to export (`: "${API_TOKEN:?export API_TOKEN: ...}";`), so it runs as pasted once
/// the variable is exported, and fails saying so before that.
pub fn curl(req: &Prepared, target: &Target) -> String {
    let secrets = &target.secrets;
    let mut parts = vec![
        "curl".to_string(),
        "-sS".into(),
        "-i".into(),
        "-X".into(),
        req.method.to_string(),
    ];
    for (k, v) in &req.headers {
        parts.push("-H".into());
        parts.push(shell_word(&format!("{k}: {v}"), secrets));
    }
    let url = format!("http://{}{}", target.authority, req.path_and_query);
    let body_text = String::from_utf8_lossy(&req.body);
    if !req.body.is_empty() {
        if req.body.len() <= 4096 {
            parts.push("--data-binary".into());
            parts.push(shell_word(&body_text, secrets));
        } else {
            // Huge bodies repeat one character; say so instead of printing 256 KiB.
            let head: String = body_text.chars().take(200).collect();
            parts.push("--data-binary".into());
            parts.push(format!(
                "@<(python3 -c {})",
                shell_quote(&format!(
                    "import sys; sys.stdout.write({:?} + 'x' * {} )",
                    head,
                    req.body.len().saturating_sub(head.len())
                ))
            ));
        }
    }
    parts.push(shell_word(&url, secrets));
    let needs: Vec<String> = secret_names(&parts, secrets)
        .into_iter()
        .map(|name| format!(": \"${{{name}:?export {name}: this request sends its value}}\";"))
        .collect();
    if needs.is_empty() {
        parts.join(" ")
    } else {
        format!("{} {}", needs.join(" "), parts.join(" "))
    }
}
