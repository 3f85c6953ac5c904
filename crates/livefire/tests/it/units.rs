//! One grammar: each text of the tables below means the same in the experiment file and
//! on every flag that takes such a value, and a bad text gets the same message both ways.

use std::time::Duration;

use clap::Parser;
use livefire::{Cli, Command};
use livefire_spec::{Fault, LoadError, StageTarget};

/// What a text must mean: the value, or the message it is refused with.
type Meaning<T> = Result<T, &'static str>;

const DURATIONS: &[(&str, Meaning<Duration>)] = &[
    ("250ms", Ok(Duration::from_millis(250))),
    ("5s", Ok(Duration::from_secs(5))),
    ("2m", Ok(Duration::from_secs(120))),
    ("1h", Ok(Duration::from_secs(3600))),
    ("1.5s", Ok(Duration::from_millis(1500))),
    ("500us", Ok(Duration::from_micros(500))),
    ("5", Err("a duration needs a unit: write `5s` or `5ms`")),
    (
        "fast",
        Err("invalid duration `fast`: write a number and a unit, e.g. `250ms`, `5s`, `2m`, `1h`"),
    ),
    (
        "-1s",
        Err("invalid duration `-1s`: write a number and a unit, e.g. `250ms`, `5s`, `2m`, `1h`"),
    ),
    (
        "1e3s",
        Err("invalid duration `1e3s`: write a number and a unit, e.g. `250ms`, `5s`, `2m`, `1h`"),
    ),
    (
        "9000h",
        Err("duration `9000h` is longer than a year: write at most `8784h`"),
    ),
];

/// Rates in requests per second.
const RATES: &[(&str, Meaning<f64>)] = &[
    ("200/s", Ok(200.0)),
    ("200", Ok(200.0)),
    ("12000/m", Ok(200.0)),
    ("3600/h", Ok(1.0)),
    ("0.5", Ok(0.5)),
    ("1/h", Ok(1.0 / 3600.0)),
    ("10000000/s", Ok(1e7)),
    (
        "200/d",
        Err(
            "invalid rate `200/d`: write a count per second, minute or hour, e.g. `200/s`, `12000/m`, `5/h` (a bare `200` is per second)",
        ),
    ),
    (
        "-5",
        Err(
            "invalid rate `-5`: write a count per second, minute or hour, e.g. `200/s`, `12000/m`, `5/h` (a bare `200` is per second)",
        ),
    ),
    (
        "1e3",
        Err(
            "invalid rate `1e3`: write a count per second, minute or hour, e.g. `200/s`, `12000/m`, `5/h` (a bare `200` is per second)",
        ),
    ),
    (
        "20000000",
        Err("rate `20000000` is out of range: write 0, or at least 1/h and at most 10000000/s"),
    ),
    (
        "0.5/h",
        Err("rate `0.5/h` is out of range: write 0, or at least 1/h and at most 10000000/s"),
    ),
];

/// Percentages as fractions; no flag takes one, the file must still read the table.
const PERCENTAGES: &[(&str, Meaning<f64>)] = &[
    ("1%", Ok(0.01)),
    ("0.5%", Ok(0.005)),
    ("100%", Ok(1.0)),
    ("50", Err("a percentage needs `%`: write `50%`")),
    ("150%", Err("percentage `150%` is outside 0% to 100%")),
];

/// Sizes in bytes; no flag takes one, the file must still read the table.
const SIZES: &[(&str, Meaning<u64>)] = &[
    ("64KiB", Ok(65536)),
    ("10MiB", Ok(10 << 20)),
    ("1GB", Ok(1_000_000_000)),
    ("512", Ok(512)),
    (
        "64XB",
        Err(
            "invalid size `64XB`: write e.g. `512B`, `64KiB`, `10MiB`, `1GB` (a bare number is bytes)",
        ),
    ),
];

const HEAD: &str = "version: 1\ntitle: units\n";
const URL: &str = "http://127.0.0.1:9/";

/// Loads an experiment and reads one value out of it, or returns the one error message.
fn from_file<T>(
    text: &str,
    read: impl FnOnce(&livefire_spec::Experiment) -> T,
) -> Result<T, String> {
    match livefire_spec::load_str("units.yaml", text, &[]) {
        Ok(loaded) => Ok(read(&loaded.experiment)),
        Err(LoadError::Invalid(report)) => {
            let messages: Vec<String> = report.errors().map(|d| d.message.clone()).collect();
            assert_eq!(
                messages.len(),
                1,
                "one error expected:\n{text}\n{messages:?}"
            );
            Err(messages[0].clone())
        }
        Err(e) => panic!("{e}"),
    }
}

/// Parses a command line and reads one value out of it, or returns clap's message for
/// the refused value (without clap's `invalid value 'X' for '--flag <F>': ` prefix).
fn from_flags<T>(args: &[&str], read: impl FnOnce(Command) -> T) -> Result<T, String> {
    match Cli::try_parse_from(std::iter::once("livefire").chain(args.iter().copied())) {
        Ok(cli) => Ok(read(cli.command)),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let message = first.split_once("': ").map_or(first, |(_, m)| m);
            Err(message.to_owned())
        }
    }
}

fn load_args(command: Command) -> livefire_load::cli::LoadArgs {
    match command {
        Command::Load(args) => args,
        other => panic!("not a load: {other:?}"),
    }
}

fn fuzz_args(command: Command) -> livefire_fuzz::cli::FuzzArgs {
    match command {
        Command::Fuzz(args) => args,
        other => panic!("not a fuzz: {other:?}"),
    }
}

/// Asserts that `got` (from one parser) is what the table says the text means.
fn check<T: PartialEq + std::fmt::Debug>(
    text: &str,
    via: &str,
    want: &Meaning<T>,
    got: Result<T, String>,
) {
    match (want, got) {
        (Ok(w), Ok(g)) => assert_eq!(&g, w, "`{text}` through {via}"),
        (Err(w), Err(g)) => assert_eq!(g, *w, "`{text}` through {via}"),
        (w, g) => panic!("`{text}` through {via}: wanted {w:?}, got {g:?}"),
    }
}

#[test]
fn durations_mean_the_same_in_the_file_and_on_every_flag() {
    for (text, want) in DURATIONS {
        let file = from_file(
            &format!("{HEAD}settings: {{ probe_every: {text} }}\ntimeline: []\n"),
            |e| e.settings.probe_every.map(|d| d.0),
        );
        check(text, "settings.probe_every", want, file.map(Option::unwrap));
        let at = from_file(
            &format!(
                "{HEAD}timeline:\n  - at: {text}\n    for: 1s\n    fault: {{ command: {{ apply: \"true\" }} }}\n"
            ),
            |e| e.timeline[0].at.0,
        );
        check(text, "timeline[].at", want, at);
        // `--flag=TEXT`, so that `-1s` is a value, not a flag.
        for flag in ["--duration", "--timeout", "--think"] {
            let arg = format!("{flag}={text}");
            let got = from_flags(&["load", URL, "-c", "1", &arg], |c| {
                let a = load_args(c);
                match flag {
                    "--duration" => a.duration,
                    "--timeout" => a.timeout,
                    _ => a.think.unwrap(),
                }
            });
            check(text, &format!("livefire load {flag}"), want, got);
        }
        for flag in ["--duration", "--timeout"] {
            let arg = format!("{flag}={text}");
            let got = from_flags(&["fuzz", "api.yaml", "--base-url", URL, &arg], |c| {
                let a = fuzz_args(c);
                if flag == "--duration" {
                    a.duration
                } else {
                    a.timeout
                }
            });
            check(text, &format!("livefire fuzz {flag}"), want, got);
        }
    }
}

#[test]
fn rates_mean_the_same_in_the_file_and_on_every_flag() {
    let request = "requests: [ { url: \"http://127.0.0.1:1/\" } ]";
    for (text, want) in RATES {
        let file = from_file(
            &format!(
                "{HEAD}timeline:\n  - at: 0s\n    for: 1s\n    load: {{ rate: {text}, {request} }}\n"
            ),
            |e| {
                e.timeline[0]
                    .load
                    .as_ref()
                    .unwrap()
                    .rate
                    .unwrap()
                    .per_second
            },
        );
        check(text, "load.rate", want, file);
        let fuzz = from_file(
            &format!(
                "{HEAD}timeline:\n  - at: 0s\n    for: 1s\n    fuzz: {{ openapi: \"http://127.0.0.1:9/openapi.json\", base_url: \"{URL}\", rate: {text} }}\n"
            ),
            |e| {
                e.timeline[0]
                    .fuzz
                    .as_ref()
                    .unwrap()
                    .rate
                    .unwrap()
                    .per_second
            },
        );
        check(text, "fuzz.rate", want, fuzz);
        let arg = format!("--rate={text}");
        let flag = from_flags(&["load", URL, &arg], |c| {
            load_args(c).rate.unwrap().as_per_second()
        });
        check(text, "livefire load -r", want, flag);
        let flag = from_flags(&["fuzz", "api.yaml", "--base-url", URL, &arg], |c| {
            fuzz_args(c).rate.unwrap().as_per_second()
        });
        check(text, "livefire fuzz --rate", want, flag);
    }
}

/// A stage of a rate load: `stages: [{ to: X }]` under `rate:` and `--stage X:1s` with
/// `-r` ramp to the same rate. Refusals are worded for each place (the file's stage
/// target may be a VU count), so only the meanings are compared here.
#[test]
fn stage_targets_of_a_rate_load_mean_the_same_in_the_file_and_on_the_flag() {
    let request = "requests: [ { url: \"http://127.0.0.1:1/\" } ]";
    for (text, want) in RATES.iter().filter(|(_, w)| w.is_ok()) {
        let file = from_file(
            &format!(
                "{HEAD}timeline:\n  - at: 0s\n    for: 1s\n    load: {{ rate: 1/s, stages: [ {{ to: {text}, over: 1s }} ], {request} }}\n"
            ),
            |e| match e.timeline[0].load.as_ref().unwrap().stages[0].to {
                // What the engine ramps to: a whole number under `rate` is per second.
                StageTarget::Rate(r) => r.per_second,
                StageTarget::Vus(n) => f64::from(n),
            },
        );
        check(text, "load.stages[].to", want, file);
        let flag = from_flags(
            &["load", URL, "-r", "1", "--stage", &format!("{text}:1s")],
            |c| {
                let config = load_args(c).to_config().unwrap();
                match config.executor {
                    livefire_load::Executor::Rate { stages, .. } => stages[0].to,
                    other => panic!("not a rate executor: {other:?}"),
                }
            },
        );
        check(text, "livefire load --stage", want, flag);
    }
    // Out of range is refused both ways, with the rate grammar's words.
    let file = from_file(
        &format!(
            "{HEAD}timeline:\n  - at: 0s\n    for: 1s\n    load: {{ rate: 1/s, stages: [ {{ to: 20000000, over: 1s }} ], {request} }}\n"
        ),
        |_| (),
    );
    let flag = from_flags(&["load", URL, "-r", "1", "--stage", "20000000:1s"], |c| {
        load_args(c)
            .to_config()
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .unwrap();
    let want = "rate `20000000` is out of range: write 0, or at least 1/h and at most 10000000/s";
    assert_eq!(file, Err(want.to_owned()));
    assert_eq!(flag, Err(format!("--stage 20000000: {want}")));
}

#[test]
fn percentages_and_sizes_in_the_file_mean_what_the_table_says() {
    for (text, want) in PERCENTAGES {
        let file = from_file(
            &format!(
                "{HEAD}timeline:\n  - at: 0s\n    for: 1s\n    fault: {{ cpu.stress: {{ cores: 1, load: {text} }} }}\n"
            ),
            |e| match &e.timeline[0].fault {
                Some(Fault::CpuStress(c)) => c.load.unwrap().0,
                other => panic!("not a cpu.stress: {other:?}"),
            },
        );
        check(text, "cpu.stress.load", want, file);
    }
    for (text, want) in SIZES {
        let file = from_file(
            &format!(
                "{HEAD}timeline:\n  - at: 0s\n    for: 1s\n    fault: {{ memory.stress: {{ size: {text} }} }}\n"
            ),
            |e| match &e.timeline[0].fault {
                Some(Fault::MemoryStress(m)) => m.size.0,
                other => panic!("not a memory.stress: {other:?}"),
            },
        );
        check(text, "memory.stress.size", want, file);
    }
}
