//! `--vars-file FILE`: variables read from a file (or stdin) instead of the command line,
//! where every local user could read a secret value with `ps`.

use std::io::Read;
use std::path::Path;

/// The variables of a vars file, in order: one `NAME=VALUE` a line, judged as `--var`
/// judges one; blank lines are skipped. `-` reads standard input to its end.
pub(crate) fn read(path: &Path) -> Result<Vec<(String, String)>, String> {
    let shown = if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| format!("--vars-file {shown}: cannot read it: {e} (nothing was applied)"))?;
    // The bad line itself is not shown: it may be a secret value that lost its `NAME=`.
    parse(&text).map_err(|line| {
        format!(
            "--vars-file {shown}:{line}: this line is not NAME=VALUE (a name, `=`, the value), as `--var` takes (nothing was applied)"
        )
    })
}

/// The lines of a vars file, or the (1-based) number of the first bad line.
fn parse(text: &str) -> Result<Vec<(String, String)>, usize> {
    let mut vars = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match livefire_spec::parse_var(line) {
            Ok(var) => vars.push(var),
            Err(_) => return Err(i + 1),
        }
    }
    Ok(vars)
}
