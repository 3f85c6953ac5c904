//! The injection payload catalog and the text signatures that `injection` and `leak`
//! look for in answers.

use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;

/// One payload: a family, the text put into a string parameter or body field, and
/// how long it asks the server to sleep (for time-based detection).
#[derive(Debug, Clone, Copy)]
pub struct Payload {
    pub family: &'static str,
    pub text: &'static str,
    pub sleep: Option<Duration>,
}

/// The delay time-based payloads ask for.
pub const SLEEP: Duration = Duration::from_secs(2);

/// The catalog, cheapest and most telling first.
pub const PAYLOADS: &[Payload] = &[
    Payload {
        family: "sql",
        text: "'",
        sleep: None,
    },
    Payload {
        family: "sql",
        text: "1' OR '1'='1",
        sleep: None,
    },
    Payload {
        family: "sql",
        text: "\"));--",
        sleep: None,
    },
    Payload {
        family: "sql",
        text: "1'; SELECT pg_sleep(2)--",
        sleep: Some(SLEEP),
    },
    Payload {
        family: "sql",
        text: "1' AND SLEEP(2)-- -",
        sleep: Some(SLEEP),
    },
    Payload {
        family: "command",
        text: ";cat /etc/passwd",
        sleep: None,
    },
    Payload {
        family: "command",
        text: "$(id)",
        sleep: None,
    },
    Payload {
        family: "command",
        text: "|sleep 2",
        sleep: Some(SLEEP),
    },
    Payload {
        family: "template",
        text: "{{7*7191}}",
        sleep: None,
    },
    Payload {
        family: "template",
        text: "${7*7191}",
        sleep: None,
    },
    Payload {
        family: "path_traversal",
        text: "../../../../../../../../etc/passwd",
        sleep: None,
    },
    Payload {
        family: "xss",
        text: "<lfx7191 onmouseover=1>",
        sleep: None,
    },
];

/// A named signature: `(kind, regex)`.
pub struct Signature {
    pub kind: &'static str,
    pub regex: Regex,
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind)
    }
}

fn compile(list: &[(&'static str, &str)]) -> Vec<Signature> {
    list.iter()
        .map(|(kind, re)| Signature {
            kind,
            regex: Regex::new(re).expect("built-in signature compiles"),
        })
        .collect()
}

/// SQL error text from common databases and drivers.
pub fn sql_errors() -> &'static [Signature] {
    static SQL: OnceLock<Vec<Signature>> = OnceLock::new();
    SQL.get_or_init(|| {
        compile(&[
            ("sql:mysql", r"(?i)you have an error in your sql syntax|warning: mysql_"),
            ("sql:postgres", r"(?i)unterminated quoted string at or near|syntax error at or near|PG::SyntaxError|psycopg2\.errors"),
            ("sql:sqlstate", r"SQLSTATE\[?\w{5}"),
            ("sql:oracle", r"\bORA-\d{5}\b|quoted string not properly terminated"),
            ("sql:mssql", r"(?i)unclosed quotation mark after the character string"),
            ("sql:sqlite", r#"(?i)sqlite3?\.OperationalError|SQLITE_ERROR|near "[^"]*": syntax error"#),
        ])
    })
}

/// What a successful command, template or traversal payload shows.
pub fn evaluation() -> &'static [Signature] {
    static EVAL: OnceLock<Vec<Signature>> = OnceLock::new();
    EVAL.get_or_init(|| {
        compile(&[
            ("command", r"uid=\d+\([^)]*\) gid=\d+"),
            ("file_read", r"root:[x*]?:0:0:"),
            ("template", r"\b50337\b"),
        ])
    })
}

/// Stack traces, internal addresses and secrets (SQL text is `sql_errors`).
pub fn leaks() -> &'static [Signature] {
    static LEAKS: OnceLock<Vec<Signature>> = OnceLock::new();
    LEAKS.get_or_init(|| {
        compile(&[
            ("stack_trace:python", r"Traceback \(most recent call last\)"),
            ("stack_trace:java", r"(?m)^\s*at [\w$.<>]+\(\w+\.(java|kt|scala):\d+\)|Exception in thread "),
            ("stack_trace:go", r"goroutine \d+ \[running\]"),
            ("stack_trace:rust", r"panicked at [^\n]*\.rs:\d+"),
            ("stack_trace:node", r"(?m)^\s*at .+ \(/[^)]+:\d+:\d+\)"),
            ("stack_trace:dotnet", r"System\.\w+Exception:|   at \w+(\.\w+)+\(.*\) in .+:line \d+"),
            ("stack_trace:php", r"(?i)(fatal error|warning)</b>:? .+ on line <b>\d+|Stack trace:\s*#0"),
            (
                "internal_address",
                r"\b(10\.\d{1,3}\.\d{1,3}\.\d{1,3}|192\.168\.\d{1,3}\.\d{1,3}|172\.(1[6-9]|2\d|3[01])\.\d{1,3}\.\d{1,3})\b",
            ),
            ("secret:aws_key", r"\bAKIA[0-9A-Z]{16}\b"),
            ("secret:private_key", r"-----BEGIN (RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
            ("secret:dsn", r"\b(postgres(ql)?|mysql|mongodb(\+srv)?|redis|amqp)://[^:/\s]+:[^@/\s]+@"),
        ])
    })
}

/// The first signature of `list` found in `text`.
pub fn find(list: &'static [Signature], text: &str) -> Option<&'static str> {
    list.iter().find(|s| s.regex.is_match(text)).map(|s| s.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_what_they_name_and_not_ordinary_errors() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "ERROR:  unterminated quoted string at or near \"'\"",
                Some("sql:postgres"),
            ),
            (
                "You have an error in your SQL syntax; check the manual",
                Some("sql:mysql"),
            ),
            ("{\"error\": \"no such report\"}", None),
            ("{\"error\": \"limit out of range\"}", None),
        ];
        for (text, want) in cases {
            assert_eq!(find(sql_errors(), text), *want, "{text}");
        }
        let cases: &[(&str, Option<&str>)] = &[
            (
                "Traceback (most recent call last):\n  File \"x.py\"",
                Some("stack_trace:python"),
            ),
            (
                "\tat com.acme.Repo.load(Repo.java:42)",
                Some("stack_trace:java"),
            ),
            ("connect 10.12.0.7:5432 failed", Some("internal_address")),
            ("db=postgres://app:hunter22@db/orders", Some("secret:dsn")),
            ("{\"error\": \"version 10.1 is not supported\"}", None),
            ("{\"error\": \"listening on 127.0.0.1:8080\"}", None),
        ];
        for (text, want) in cases {
            assert_eq!(find(leaks(), text), *want, "{text}");
        }
    }
}
