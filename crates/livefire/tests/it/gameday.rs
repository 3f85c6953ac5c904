//! Game days (`scenario:`): the seeded draw replays byte for byte in `--dry-run`, a run
//! applies and rolls back the drawn curveballs when drawn, hidden on the progress line,
//! and two game days of one scenario compare with time to recover per curveball.

use crate::support::*;

/// examples/gameday.yaml with its seed replaced, on a free port.
fn with_seed(home: &Home, seed: u64) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo().join("examples/gameday.yaml")).unwrap();
    assert!(text.contains("seed: 7 "), "the example fixes its seed");
    home.file(&text.replace("seed: 7 ", &format!("seed: {seed} ")))
}

fn dry_run(home: &Home, file: &std::path::Path) -> String {
    let mut cmd = home.livefire();
    cmd.arg("run").arg(file).arg("--dry-run");
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    out
}

/// The schedule rows of a dry run: (start ms, stop ms, activity name).
fn schedule(dry: &str) -> Vec<(u64, u64, String)> {
    let ms = |w: &str| match w.strip_suffix("ms") {
        Some(n) => n.parse::<u64>().unwrap(),
        None => (w.strip_suffix('s').unwrap().parse::<f64>().unwrap() * 1000.0).round() as u64,
    };
    // The activity column runs from `activity` to `kind` in the header (the plan
    // aligns its columns to the longest name).
    let header = dry
        .lines()
        .find(|l| l.contains(" activity ") && l.contains(" kind "))
        .unwrap_or_else(|| panic!("no plan header\n{dry}"));
    let (from, to) = (
        header.find(" activity ").unwrap() + 1,
        header.find(" kind ").unwrap() + 1,
    );
    dry.lines()
        .filter(|l| l.contains("  curveball "))
        .map(|l| {
            let mut words = l.split_whitespace();
            let (start, stop) = (ms(words.next().unwrap()), ms(words.next().unwrap()));
            let name: String = l.chars().skip(from).take(to - from).collect();
            (start, stop, name.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_same_seed_prints_the_same_game_day_and_another_seed_another() {
    let home = Home::new();
    let seven = with_seed(&home, 7);
    let first = dry_run(&home, &seven);
    let again = dry_run(&home, &seven);
    assert_eq!(
        first, again,
        "the same seed must print the same plan, byte for byte"
    );
    let drawn = schedule(&first);
    assert_eq!(drawn.len(), 2, "draw: 2\n{first}");
    for (start, stop, name) in &drawn {
        assert!(
            *start >= 1000 && *stop <= 9000,
            "{name} outside the window\n{first}"
        );
        assert!((2000..=3000).contains(&(stop - start)), "{name}\n{first}");
    }
    assert_ne!(
        drawn[0].2, drawn[1].2,
        "a curveball is drawn at most once\n{first}"
    );
    let other_home = Home::new();
    let other = dry_run(&other_home, &with_seed(&other_home, 8));
    assert_ne!(
        schedule(&other),
        drawn,
        "seed 8 drew seed 7's game day\n{other}"
    );
}

#[test]
fn a_game_day_applies_the_drawn_curveballs_and_hides_them_while_active() {
    let home = Home::new();
    let port = free_port().to_string();
    let file = with_seed(&home, 7);
    let drawn = schedule(&dry_run(&home, &file));
    let (code, out, err) = run(home.run(&file).args(["--var", &format!("port={port}")]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    // Hidden: the progress line (stderr) names `curveball N`, never what it is.
    let progress: Vec<&str> = err.lines().filter(|l| l.contains("active: ")).collect();
    assert!(
        progress.iter().any(|l| l.contains("active: curveball ")),
        "{err}"
    );
    for l in &progress {
        assert!(!l.contains("process.pause") && !l.contains("frozen"), "{l}");
    }
    // The journal plans the drawn schedule, and shows each curveball applied no
    // earlier than its drawn start, rolled back no earlier than its drawn stop.
    let journal = home.journal();
    let events: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let planned: Vec<(u64, u64, String)> = events
        .iter()
        .find(|e| e["type"] == "plan")
        .and_then(|e| e["activities"].as_array())
        .unwrap_or_else(|| panic!("no planned activities\n{journal}"))
        .iter()
        .map(|a| {
            let at = a["at_ms"].as_u64().unwrap();
            let name = a["name"].as_str().unwrap().to_owned();
            (at, at + a["for_ms"].as_u64().unwrap(), name)
        })
        .collect();
    assert_eq!(planned, drawn, "{journal}");
    let t = |kind: &str, name: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["activity"].as_str() == Some(name))
            .and_then(|e| e["t"].as_u64())
            .unwrap_or_else(|| panic!("no {kind} for {name}\n{journal}"))
    };
    let during = events
        .iter()
        .find(|e| e["type"] == "phase_started" && e["phase"] == "during")
        .and_then(|e| e["t"].as_u64())
        .unwrap();
    for (start, stop, name) in &drawn {
        assert!(
            t("fault_applied", name) - during >= *start,
            "{name} early\n{journal}"
        );
        assert!(
            t("fault_rolled_back", name) - during >= *stop,
            "{name} cut\n{journal}"
        );
    }
    let s = home.summary();
    let faults = s["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 2, "{s}");
    assert!(faults.iter().all(|f| f["rollback_ok"] == true), "{s}");
}

/// A game day of `file` run for real into its own `--out` under `home`; its run folder.
fn game_day(home: &Home, file: &std::path::Path, out: &str) -> std::path::PathBuf {
    let port = free_port().to_string();
    let mut cmd = home.livefire();
    cmd.arg("run")
        .arg(file)
        .args(["--var", &format!("port={port}"), "--out"])
        .arg(home.path().join(out));
    let (code, stdout, err) = run(&mut cmd);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{err}");
    let dirs: Vec<_> = std::fs::read_dir(home.path().join(out))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn two_game_days_of_one_scenario_compare_time_to_recover_per_curveball() {
    let home = Home::new();
    // Seed 3 freezes the worker first (the hypothesis fails), then pauses the mailer
    // (nobody is hurt).
    let file = with_seed(&home, 3);
    let (a, b) = (game_day(&home, &file, "a"), game_day(&home, &file, "b"));
    for dir in [&a, &b] {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        let curveballs = s["gameday"]["curveballs"].as_array().unwrap();
        assert_eq!(curveballs.len(), 2, "{s}");
        let frozen = &curveballs[0];
        assert_eq!(frozen["name"], "curveball 1: worker frozen", "{s}");
        assert_eq!(frozen["impacted"], true, "{s}");
        // The worker answers again only once it runs: no sooner than its pause ended
        // (less the moments between SIGCONT and the journaling of the rollback, and
        // between SIGSTOP and the journaling of the apply).
        let recover = frozen["time_to_recover_ms"].as_u64().unwrap();
        let paused = frozen["ended_ms"].as_u64().unwrap() - frozen["applied_ms"].as_u64().unwrap();
        assert!(
            recover + 300 >= paused,
            "recovered before it was released: {s}"
        );
        assert_eq!(curveballs[1]["impacted"], false, "{s}");
        let review = std::fs::read_to_string(dir.join("review.md")).unwrap();
        assert!(
            review.contains("| curveball 1: worker frozen |"),
            "{review}"
        );
        assert!(review.contains("## What we learned"), "{review}");
    }
    let mut cmd = home.livefire();
    cmd.arg("compare").arg(&a).arg(&b);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let section = out
        .split("\ngame day (seed 3)")
        .nth(1)
        .unwrap_or_else(|| panic!("no game-day section:\n{out}"));
    let recover = section
        .lines()
        .find(|l| l.trim_start().starts_with("time to recover"))
        .unwrap_or_else(|| panic!("{out}"));
    // Both runs measured it, and the change is judged against the probes' interval.
    let cells: Vec<&str> = recover
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells.len(), 4, "{recover}");
    assert!(
        cells[1].ends_with('s') && cells[2].ends_with('s'),
        "{recover}"
    );
    assert!(cells[3].contains("noise"), "{recover}");

    // Another scenario is refused, with the reason, and nothing is printed as compared.
    let other = home.file(
        &std::fs::read_to_string(&file)
            .unwrap()
            .replace("draw: 2", "draw: 1"),
    );
    let c = game_day(&home, &other, "c");
    let mut cmd = home.livefire();
    cmd.arg("compare").arg(&a).arg(&c);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("not two game days of the same scenario"),
        "{err}"
    );
}

/// A game day that pauses `victims` (drawn all), each for 10 s from a start in [1s, 2s]:
/// long enough to be ended early or halted while active.
fn long_game_day(victims: &[&Victim]) -> String {
    let targets: String = victims
        .iter()
        .enumerate()
        .map(|(i, v)| format!("  v{i}: {{ process: {{ pid: {} }} }}\n", v.pid()))
        .collect();
    let pool: String = victims
        .iter()
        .enumerate()
        .map(|(i, _)| format!("    - {{ fault: {{ process.pause: {{ target: v{i} }} }} }}\n"))
        .collect();
    format!(
        "version: 1\ntitle: a long game day\nsettings: {{ seed: 1 }}\ntargets:\n{targets}timeline: []\nscenario:\n  draw: {}\n  window: [1s, 12s]\n  duration: [10s, 10s]\n  hidden: true\n  pool:\n{pool}",
        victims.len()
    )
}

/// The journal's events so far, once `ready` holds for them (waits up to 30 s).
fn wait_for_journal(
    home: &Home,
    ready: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    for _ in 0..300 {
        let events: Vec<serde_json::Value> = std::fs::read_dir(home.path().join("runs"))
            .into_iter()
            .flatten()
            .flat_map(|d| std::fs::read_to_string(d.unwrap().path().join("journal.jsonl")))
            .flat_map(|j| {
                j.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        if ready(&events) {
            return events;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the journal never showed what the test waits for");
}

fn count(events: &[serde_json::Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

/// Sends one line to the active run's control socket; its answer.
fn control(home: &Home, command: &str) -> String {
    use std::io::{BufRead, Write};
    let socket = std::fs::read_dir(home.path().join("home/active"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("the run's control socket");
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    writeln!(stream, "{command}").unwrap();
    let mut reply = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut reply)
        .unwrap();
    reply
}

#[test]
fn the_facilitator_ends_a_curveball_early_over_the_control_socket() {
    let home = Home::new();
    let victim = Victim::start();
    let file = home.file(&long_game_day(&[&victim]));
    let child = home
        .run(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_journal(&home, |e| count(e, "fault_applied") == 1);
    assert!(victim.wait_state('T'), "the curveball paused the victim");
    // Not a number, not active: said, nothing done.
    let said = control(&home, "end curveball two");
    assert!(said.contains("not a curveball number"), "{said}");
    let said = control(&home, "end curveball 2");
    assert!(said.contains("curveball 2 is not active"), "{said}");
    assert_eq!(victim.state(), 'T');

    let said = control(&home, "end curveball 1");
    assert!(
        said.contains("ended `curveball 1: process.pause v0` early: rolled back"),
        "{said}"
    );
    // Rolled back now, not at its drawn end 10 s after it began.
    assert!(
        victim.running(),
        "the victim still paused: {}",
        victim.state()
    );
    let said = control(&home, "end curveball 1");
    assert!(said.contains("curveball 1 is not active"), "{said}");

    let (code, out, err) = finish(child);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let journal = home.journal();
    let events: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let applied = events
        .iter()
        .find(|e| e["type"] == "fault_applied")
        .unwrap();
    let back: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "fault_rolled_back")
        .collect();
    assert_eq!(
        back.len(),
        1,
        "rolled back once, by the facilitator\n{journal}"
    );
    assert_eq!(back[0]["by"], "facilitator", "{journal}");
    assert!(
        back[0]["t"].as_u64().unwrap() < applied["t"].as_u64().unwrap() + 10_000,
        "{journal}"
    );
    let s = home.summary();
    assert_eq!(
        s["gameday"]["curveballs"][0]["ended_by"], "facilitator",
        "{s}"
    );
    assert_eq!(s["ledger_left"], 0, "{s}");
}

#[test]
fn halting_mid_game_rolls_every_curveball_back() {
    let home = Home::new();
    let (a, b) = (Victim::start(), Victim::start());
    let file = home.file(&long_game_day(&[&a, &b]));
    let child = home
        .run(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_journal(&home, |e| count(e, "fault_applied") == 2);
    assert!(
        a.wait_state('T') && b.wait_state('T'),
        "both curveballs active"
    );
    let (code, out, err) = run(home.livefire().arg("halt"));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let (code, out, err) = finish(child);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(a.running() && b.running(), "{} {}", a.state(), b.state());
    let journal = home.journal();
    assert_eq!(
        journal.matches("\"type\":\"fault_rolled_back\"").count(),
        2,
        "{journal}"
    );
    assert!(!journal.contains("\"ok\":false"), "{journal}");
    assert!(
        home.ledger_index().trim().is_empty(),
        "{}",
        home.ledger_index()
    );
    let s = home.summary();
    assert_eq!(s["verdict"], "aborted", "{s}");
    assert_eq!(
        s["gameday"]["curveballs"].as_array().unwrap().len(),
        2,
        "{s}"
    );
}

/// A tmux server of its own (`-L`), killed when dropped, so a test never touches the
/// user's sessions.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let socket = format!(
            "livefire-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let status = std::process::Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "gd",
                "-x",
                "160",
                "-y",
                "45",
            ])
            .arg(command)
            .status()
            .unwrap();
        assert!(status.success(), "tmux starts a session");
        Tmux { socket }
    }
    fn screen(&self) -> String {
        let out = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "gd"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// The screen once it shows everything in `wanted` (waits up to 30 s).
    fn wait_for(&self, wanted: &[&str]) -> String {
        for _ in 0..300 {
            let screen = self.screen();
            if wanted.iter().all(|w| screen.contains(w)) {
                return screen;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the screen never showed {wanted:?}:\n{}", self.screen());
    }
    fn keys(&self, keys: &str) {
        let status = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "gd", keys])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn the_facilitators_terminal_view_shows_what_is_active_and_next_and_its_keys_end_and_halt() {
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        livefire_testkit::skip_missing("tmux not found", "apt-get install tmux");
        return;
    }
    let home = Home::new();
    let (a, b) = (Victim::start(), Victim::start());
    // Seed 7 draws `the cache stalls` from 1 s to 7 s, then the pause of v1 from 6.1 s.
    let file = home.file(&format!(
        "version: 1\ntitle: facilitated\nsettings: {{ seed: 7 }}\ntargets:\n  v0: {{ process: {{ pid: {} }} }}\n  v1: {{ process: {{ pid: {} }} }}\ntimeline: []\nscenario:\n  draw: 2\n  window: [1s, 16s]\n  duration: [6s, 6s]\n  hidden: true\n  pool:\n    - {{ name: the cache stalls, fault: {{ process.pause: {{ target: v0 }} }} }}\n    - {{ fault: {{ process.pause: {{ target: v1 }} }} }}\n",
        a.pid(),
        b.pid()
    ));
    let code = home.path().join("exit-code");
    let tmux = Tmux::start(&format!(
        "env LIVEFIRE_HOME={} {} gameday {} --out {}; echo $? > {}; sleep 60",
        home.path().join("home").display(),
        env!("CARGO_BIN_EXE_livefire"),
        file.display(),
        home.path().join("runs").display(),
        code.display()
    ));
    // The facilitator sees the hidden curveball's kind and target, and what comes next.
    let screen = tmux.wait_for(&["ACTIVE", "next: curveball 2 (next in"]);
    let row = screen
        .lines()
        .find(|l| l.contains("the cache stalls"))
        .unwrap_or_else(|| panic!("no row for curveball 1:\n{screen}"));
    assert!(
        row.contains("process.pause v0") && row.contains("ACTIVE"),
        "{row}"
    );
    assert!(screen.contains("active: curveball 1"), "{screen}");
    assert!(screen.contains("1-9 end that curveball now"), "{screen}");
    assert!(a.wait_state('T'));

    // `1` ends curveball 1 now: rolled back, journaled as the facilitator's.
    tmux.keys("1");
    let screen = tmux.wait_for(&["ended `curveball 1: the cache stalls` early"]);
    assert!(a.running(), "v0 still paused\n{screen}");
    let events = wait_for_journal(&home, |e| {
        e.iter()
            .any(|e| e["type"] == "fault_rolled_back" && e["by"] == "facilitator")
    });
    let ended = events
        .iter()
        .find(|e| e["type"] == "fault_rolled_back")
        .unwrap();
    assert_eq!(ended["activity"], "curveball 1: the cache stalls");

    // `H` halts all once curveball 2 is active: everything rolled back, exit 2, and the
    // terminal is given back before the verdict is printed.
    wait_for_journal(&home, |e| count(e, "fault_applied") == 2);
    assert!(b.wait_state('T'));
    tmux.keys("H");
    let screen = tmux.wait_for(&["verdict: aborted (exit 2)"]);
    assert!(
        !screen.contains("keys: 1-9"),
        "the view is still up:\n{screen}"
    );
    tmux.wait_for(&["verdict: aborted (exit 2)", "run folder: "]);
    // The shell writes livefire's exit status once it has exited.
    let status = (0..100)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            std::fs::read_to_string(&code)
                .ok()
                .filter(|s| s.ends_with('\n'))
        })
        .expect("livefire exits");
    assert_eq!(status.trim(), "2");
    assert!(a.running() && b.running(), "{} {}", a.state(), b.state());
    let journal = home.journal();
    assert_eq!(
        journal.matches("\"type\":\"fault_rolled_back\"").count(),
        2,
        "{journal}"
    );
    assert!(!journal.contains("\"ok\":false"), "{journal}");
    assert!(home.ledger_index().trim().is_empty());
}
