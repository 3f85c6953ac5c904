//! The live page's stream, `GET /api/runs/ID/events`, over real sockets: several
//! clients of one live run (one of them reading nothing until the others are done, one
//! resuming with `Last-Event-ID`) each get the journal exactly as written, then `end`;
//! a client of an ended run gets the whole journal, or what follows its `Last-Event-ID`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve::{Server, pause_with_probe, wait_run};
use crate::support::*;

/// One message of the stream.
#[derive(Debug)]
struct Message {
    event: String,
    id: Option<String>,
    data: Value,
}

/// A stream opened and answered, its body not read yet.
struct Stream {
    socket: TcpStream,
    status: u16,
    head: String,
}

impl Stream {
    /// `GET /api/runs/ID/events` as a browser's EventSource sends it, with
    /// `Last-Event-ID` when given; returns once the answer's head is in.
    fn open(server: &Server, token: &str, id: &str, last_event_id: Option<&str>) -> Stream {
        let mut socket = TcpStream::connect(server.addr()).expect("the server listens");
        socket
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let resume = last_event_id
            .map(|v| format!("Last-Event-ID: {v}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /api/runs/{id}/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n{resume}Connection: close\r\n\r\n",
            server.addr()
        );
        socket.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(socket.read(&mut b).unwrap(), 1, "the answer's head ends");
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Stream {
            socket,
            status,
            head,
        }
    }

    /// The body to its end (the server closes after `end`), as text.
    fn body(mut self) -> String {
        let mut raw = Vec::new();
        self.socket.read_to_end(&mut raw).expect("the stream ends");
        let chunked = self
            .head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        String::from_utf8(if chunked { dechunk(&raw) } else { raw }).expect("UTF-8")
    }

    /// The body's messages, to the end of the stream.
    fn messages(self) -> Vec<Message> {
        parse(&self.body())
    }
}

/// An HTTP/1.1 chunked body's bytes.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = usize::from_str_radix(
            std::str::from_utf8(&raw[..line_end])
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .expect("a hex chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// SSE messages (blank-line separated; comment lines, the heartbeat, skipped).
fn parse(body: &str) -> Vec<Message> {
    let mut out = Vec::new();
    for block in body.split("\n\n") {
        let (mut event, mut id, mut data) = (None, None, None);
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).expect("data is JSON"));
            }
        }
        if let (Some(event), Some(data)) = (event, data) {
            out.push(Message { event, id, data });
        }
    }
    out
}

/// The run's journal.jsonl, one record a line.
fn journal(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a journal line is JSON"))
        .collect()
}

/// Asserts a client got exactly the journal's records with a seq past `after` (all
/// without it), once each and in journal order, each under its seq as `id`, then `end`.
fn assert_journal_then_end(who: &str, got: &[Message], journal: &[Value], after: Option<u64>) {
    let want: Vec<&Value> = journal
        .iter()
        .filter(|r| after.is_none_or(|n| r["seq"].as_u64().unwrap() > n))
        .collect();
    let (last, records) = got
        .split_last()
        .unwrap_or_else(|| panic!("{who}: no message"));
    assert_eq!(last.event, "end", "{who}: `end` comes last: {last:?}");
    let names = |v: &Value| (v["seq"].as_u64(), v["type"].as_str().map(str::to_owned));
    assert_eq!(
        records.iter().map(|m| names(&m.data)).collect::<Vec<_>>(),
        want.iter().map(|r| names(r)).collect::<Vec<_>>(),
        "{who}: the records, by seq and type, are the journal's"
    );
    for (m, line) in records.iter().zip(&want) {
        assert_eq!(m.event, "record", "{who}: {m:?}");
        assert_eq!(
            m.id.as_deref(),
            Some(line["seq"].to_string().as_str()),
            "{who}: a record's id is its seq"
        );
        // Only `window` records are sent shortened (their histogram as figures).
        if line["type"] != "window" {
            assert_eq!(&m.data, *line, "{who}: sent as written");
        }
    }
}

#[test]
fn clients_of_a_live_run_each_get_every_record_once_in_journal_order_then_end() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let victim = Victim::start();
    let (status, body) =
        server.put_experiment(&operator, "pause", &pause_with_probe(victim.pid(), 120));
    assert_eq!(status, 201, "{body}");
    let (status, run) = server.start_run(&operator, "pause");
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let dir = std::path::PathBuf::from(run["dir"].as_str().unwrap());
    assert!(victim.wait_state('T'), "the run paused the victim");

    // (who, Last-Event-ID); "slow" reads nothing until the others have ended.
    let clients = [
        ("reader 1", None),
        ("reader 2", None),
        ("reader 3", None),
        ("resumes after seq 2", Some(2)),
        ("slow", None),
    ];
    let mut readers = Vec::new();
    let mut slow = None;
    for (who, after) in clients {
        let stream = Stream::open(
            &server,
            &operator,
            &id,
            after.map(|n: u64| n.to_string()).as_deref(),
        );
        assert_eq!(stream.status, 200, "{who}: {}", stream.head);
        assert!(
            stream.head.contains("text/event-stream"),
            "{who}: {}",
            stream.head
        );
        if who == "slow" {
            slow = Some(stream);
        } else {
            readers.push((who, after, std::thread::spawn(move || stream.messages())));
        }
    }
    // The clients joined a live run: it goes on, writing probe samples, while they watch.
    let deadline = Instant::now() + Duration::from_secs(60);
    while journal(&dir)
        .iter()
        .filter(|r| r["type"] == "probe")
        .count()
        < 5
    {
        assert!(Instant::now() < deadline, "the run samples its probe");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, v) = server.json("GET", &format!("/api/runs/{id}"), &operator, None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["run"]["state"], "running", "{v}");
    let (status, stop) = server.json("POST", &format!("/api/runs/{id}/stop"), &operator, None);
    assert_eq!(status, 202, "{stop}");

    let got: Vec<_> = readers
        .into_iter()
        .map(|(who, after, t)| (who, after, t.join().expect("a reader")))
        .collect();
    // Every other client has its `end` while the slow one has not read a byte of its
    // stream: it held nobody up. It gets everything now.
    let journal = journal(&dir);
    assert!(
        journal.iter().any(|r| r["type"] == "run_ended"),
        "the journal is complete once the streams ended"
    );
    assert!(
        journal.iter().any(|r| r["type"] == "audit"),
        "the console's audit lines, appended after the run, are in the journal"
    );
    for (who, after, messages) in &got {
        assert_journal_then_end(who, messages, &journal, *after);
    }
    let slow = slow.unwrap().messages();
    assert_journal_then_end("slow", &slow, &journal, None);
}

#[test]
fn a_client_of_an_ended_run_gets_the_whole_journal_then_end_or_what_follows_last_event_id() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let viewer = server.token("viewer", "bob", None);
    let victim = Victim::start();
    let (status, body) =
        server.put_experiment(&operator, "pause", &pause_with_probe(victim.pid(), 1));
    assert_eq!(status, 201, "{body}");
    let (status, run) = server.start_run(&operator, "pause");
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let dir = std::path::PathBuf::from(run["dir"].as_str().unwrap());
    let ended = wait_run(&server, &viewer, &id, |v| v["run"]["state"] == "ended");
    assert_eq!(ended["run"]["state"], "ended", "{ended}");
    let journal = journal(&dir);
    let seqs: Vec<u64> = journal.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.len() > 4, "{journal:?}");
    let (first, middle, last) = (seqs[0], seqs[seqs.len() / 2], *seqs.last().unwrap());

    // (Last-Event-ID sent, records expected after)
    let cases = [
        (None, None),
        (Some(first.to_string()), Some(first)),
        (Some(middle.to_string()), Some(middle)),
        (Some(last.to_string()), Some(last)),
    ];
    for (sent, after) in cases {
        let who = format!("Last-Event-ID {sent:?}");
        let stream = Stream::open(&server, &viewer, &id, sent.as_deref());
        assert_eq!(stream.status, 200, "{who}: {}", stream.head);
        assert_journal_then_end(&who, &stream.messages(), &journal, after);
    }

    // A Last-Event-ID that is no seq: refused, saying what to send.
    for bad in ["yesterday", "-1", "3.5"] {
        let stream = Stream::open(&server, &viewer, &id, Some(bad));
        assert_eq!(stream.status, 400, "{bad}: {}", stream.head);
        let body = stream.body();
        assert!(
            body.contains(&format!("Last-Event-ID `{bad}` is not a journal seq")),
            "{bad}: {body}"
        );
    }
}
