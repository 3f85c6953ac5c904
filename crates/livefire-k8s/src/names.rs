//! Names and labels of a run's objects: Kubernetes allows fewer characters and less
//! length than a run id has, so the names are derived here, once, for render, the
//! launcher and `livefire recover` alike.

/// `app.kubernetes.io/name` of every object livefire creates.
pub const APP_LABEL: &str = "app.kubernetes.io/name";
/// Its value.
pub const APP: &str = "livefire";
/// The label that names the run (a valid label value derived from the run id).
pub const RUN_LABEL: &str = "livefire.dev/run";
/// The annotation that holds the run id exactly as livefire wrote it.
pub const RUN_ID_ANNOTATION: &str = "livefire.dev/run-id";
/// The annotation that holds the experiment's title.
pub const TITLE_ANNOTATION: &str = "livefire.dev/title";

/// The longest object name: the Job's pods are named `<job>-<index>-<5 chars>` and
/// their hostnames `<job>-<index>`, which must fit in 63 characters with an index of up
/// to five digits.
const NAME_MAX: usize = 52;
/// Label values are at most 63 characters.
const LABEL_MAX: usize = 63;

/// The name of the run's Job and ConfigMap: `livefire-<run id, lower-case>`, cut with a
/// hash of the whole run id when it is too long or had characters Kubernetes refuses,
/// so two runs never share a name.
pub fn object_name(run_id: &str) -> String {
    let clean = dns_label(run_id);
    let body = if clean.len() + "livefire-".len() <= NAME_MAX && clean == run_id.to_lowercase() {
        clean
    } else {
        let keep = NAME_MAX - "livefire-".len() - 9;
        let cut = clean[..clean.len().min(keep)].trim_end_matches('-');
        format!("{cut}-{:08x}", fnv1a(run_id))
    };
    format!("livefire-{}", body.trim_start_matches('-'))
}

/// The `livefire.dev/run` label's value: the run id itself when Kubernetes accepts it
/// as a label value, else the same derived form as [`object_name`] without its prefix.
pub fn run_label(run_id: &str) -> String {
    let valid = !run_id.is_empty()
        && run_id.len() <= LABEL_MAX
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && run_id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && run_id.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        run_id.to_owned()
    } else {
        object_name(run_id)["livefire-".len()..].to_owned()
    }
}

/// The label selector of every object of a run.
pub fn selector(run_id: &str) -> String {
    format!("{APP_LABEL}={APP},{RUN_LABEL}={}", run_label(run_id))
}

/// Whether `name` is a DNS-1123 label (a namespace, a ServiceAccount, a Secret).
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Lower-case letters, digits and single dashes.
fn dns_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// FNV-1a, 32 bits: stable across versions and platforms (a name must not change when
/// a hasher does, or `recover` would look for the wrong objects).
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
