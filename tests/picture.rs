//! `pidlab trace --svg` and `run --trace --svg`: the trace drawn as a
//! sequence diagram. Every picture is rendered by a real SVG renderer
//! (`rsvg-convert`, Debian's librsvg2-bin) and checked twice: as a picture
//! (its size, its colours) and as an SVG (a lifeline per process of the
//! trace, an arrow per signal, the trace's own labels).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(20);
const RSVG: &str = "/usr/bin/rsvg-convert";

/// A picture as a renderer draws it.
struct Rendered {
    width: u32,
    height: u32,
    /// RGBA, row by row.
    pixels: Vec<u8>,
}

impl Rendered {
    /// Render `svg` to PNG with rsvg-convert, and decode the PNG.
    fn of(svg: &Path) -> Rendered {
        require(RSVG, "apt-get install librsvg2-bin (.ci/run does)");
        let png = svg.with_extension("png");
        let mut cmd = Command::new(RSVG);
        cmd.arg("-o").arg(&png).arg(svg);
        let out = run_within(cmd, T);
        assert_eq!(out.code(), 0, "rsvg-convert could not render {}: {out:?}", svg.display());
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut pixels).expect("one frame");
        assert_eq!(info.bit_depth, png::BitDepth::Eight, "rsvg-convert writes 8 bits a channel");
        pixels.truncate(info.buffer_size());
        // RGB when the picture is opaque, RGBA otherwise: make it RGBA.
        let pixels = match info.color_type {
            png::ColorType::Rgba => pixels,
            png::ColorType::Rgb => pixels.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
            other => panic!("rsvg-convert wrote {other:?}"),
        };
        Rendered { width: info.width, height: info.height, pixels }
    }

    /// How many pixels are (nearly) this colour.
    fn count(&self, rgb: [u8; 3]) -> usize {
        self.pixels
            .chunks_exact(4)
            .filter(|p| p[3] > 200 && (0..3).all(|i| p[i].abs_diff(rgb[i]) <= 24))
            .count()
    }

    /// How many pixels are not the white background.
    fn inked(&self) -> usize {
        self.pixels.chunks_exact(4).filter(|p| p[3] > 0 && (p[0] < 230 || p[1] < 230 || p[2] < 230)).count()
    }
}

/// The `<g class="CLASS" ...>` openings of an SVG.
fn groups<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
    let opening = format!("<g class=\"{class}\"");
    svg.match_indices(&opening).map(|(at, _)| &svg[at..at + svg[at..].find('>').unwrap()]).collect()
}

/// The value of `name="..."` in a tag.
fn attribute<'a>(tag: &'a str, name: &str) -> &'a str {
    let start =
        tag.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} in {tag}")) + name.len() + 3;
    &tag[start..start + tag[start..].find('"').unwrap()]
}

fn host_pid(who: &Value) -> i64 {
    who["host_pid"].as_i64().expect("host_pid")
}

fn pids(who: &Value) -> String {
    who["nspid"].as_array().unwrap().iter().map(|p| p.to_string()).collect::<Vec<_>>().join("/")
}

/// Check the SVG against the trace's events: a lifeline for each process
/// in them (labelled with its name and PIDs), an arrow for each signal
/// sent, an exit mark for each exit.
fn check_structure(svg: &str, events: &[Value]) {
    let sent: Vec<&Value> = events.iter().filter(|e| e["event"] == "generate").collect();
    // The processes: who sends or is sent a signal, or exits (a task seen
    // only taking a signal is a thread of one of them).
    let mut traced = BTreeSet::new();
    for e in events.iter().filter(|e| e["event"] != "deliver") {
        traced.insert(host_pid(&e["target"]));
        if e["event"] == "generate" {
            traced.insert(host_pid(&e["sender"]));
        }
    }
    let lifelines = groups(svg, "lifeline");
    let drawn: BTreeSet<i64> =
        lifelines.iter().map(|l| attribute(l, "data-host-pid").parse().unwrap()).collect();
    assert_eq!(lifelines.len(), drawn.len(), "one lifeline per process: {lifelines:#?}");
    assert_eq!(drawn, traced, "a lifeline for every process of the trace, and no other");
    for e in &sent {
        // The label shows the target's name and its PID at each level.
        let comm = e["target"]["comm"].as_str().unwrap();
        assert!(
            svg.contains(&format!(">{comm}</text>"))
                && svg.contains(&format!(">{}</text>", pids(&e["target"]))),
            "the lifeline of {comm} {} is labelled",
            pids(&e["target"])
        );
    }
    let arrows = groups(svg, "signal");
    assert_eq!(arrows.len(), sent.len(), "one arrow per signal sent: {arrows:#?}");
    for (arrow, e) in arrows.iter().zip(&sent) {
        assert_eq!(
            attribute(arrow, "data-signal"),
            e["signal"].as_str().unwrap(),
            "arrows in the trace's order"
        );
    }
    let exits = events.iter().filter(|e| e["event"] == "exit").count();
    assert_eq!(groups(svg, "exit").len(), exits, "an exit mark per exit");
    assert!(!svg.contains("<script") && !svg.contains("href="), "self-contained: nothing to fetch or run");
}

/// The fate an arrow was drawn with, for the first signal `sig` sent to
/// the process whose innermost PID is `ns_pid`.
fn fate_of<'a>(svg: &'a str, events: &[Value], sig: &str, ns_pid: i64, code: i64) -> &'a str {
    let sent: Vec<&Value> = events.iter().filter(|e| e["event"] == "generate").collect();
    let i = sent
        .iter()
        .position(|e| {
            e["signal"] == sig
                && e["code"] == code
                && e["target"]["nspid"].as_array().unwrap().last().unwrap() == ns_pid
        })
        .unwrap_or_else(|| panic!("no {sig} (code {code}) to PID {ns_pid} in {events:#?}"));
    attribute(groups(svg, "signal")[i], "data-fate")
}

/// No tracefs instance named after `tracer` is left (looked at through a
/// private mount, as pidlab itself does).
fn no_instance_of(tracer: i32) {
    let script = "mount --make-rprivate / && (mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing) && ls /sys/kernel/tracing/instances";
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", script]);
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        !out.stdout.contains(&format!("pidlab-{tracer}-")),
        "instance of tracer {tracer} left: {}",
        out.stdout
    );
}

#[test]
fn trace_svg_draws_the_dropped_sigterm_the_kill_and_the_teardown() {
    assert!(nix::unistd::geteuid().is_root(), "tracing needs root");
    let lab = Lab::new();
    let svg_path = lab.data.path().join("stop.svg");
    // Shell form: dash is PID 1, with no handler for SIGTERM.
    lab.start(&["run", "-d", "--name", "pic", "--cmd", "pidlab probe --on-term-save /tmp/s"]);
    let mut tracer = Running::start(&mut lab.cmd(&[
        "trace",
        "pic",
        "--format",
        "json",
        "--svg",
        svg_path.to_str().unwrap(),
    ]));
    tracer.expect_line("\"event\":\"tracing\"", T);
    let tracer_pid = tracer.pid();
    lab.ok(&["stop", "-t", "1", "pic"]);
    let out = tracer.finish(T);
    assert_eq!(out.code(), 0, "{out:?}");
    let lines: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let verdict = lines.last().unwrap()["text"].as_str().unwrap().to_string();
    let events: Vec<Value> =
        lines.into_iter().filter(|e| e["event"] != "tracing" && e["event"] != "verdict").collect();
    no_instance_of(tracer_pid);

    let svg = std::fs::read_to_string(&svg_path).expect("the picture was written");
    check_structure(&svg, &events);
    assert_eq!(fate_of(&svg, &events, "SIGTERM", 1, 0), "dropped");
    assert_eq!(fate_of(&svg, &events, "SIGKILL", 1, 0), "ancestor-kill");
    assert_eq!(fate_of(&svg, &events, "SIGKILL", 2, 128), "teardown");
    assert_eq!(groups(&svg, "namespace").len(), 1, "one PID namespace, one box");
    // The verdict is the caption (wrapped, so look for its opening words).
    let opening: String = verdict.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
    assert!(svg.contains(&opening), "caption {opening:?} missing");

    let picture = Rendered::of(&svg_path);
    assert_eq!(picture.width, 1280, "drawn for a 1280-wide projector");
    assert!(picture.height >= 720, "{}", picture.height);
    let inked = picture.inked() as f64 / (picture.width * picture.height) as f64;
    assert!(inked > 0.02, "the picture is (nearly) blank: {inked:.3} inked");
    // Each fate is drawn in its colour (dropped red, ancestor orange, teardown purple).
    for (fate, rgb) in
        [("dropped", [0xc5, 0x22, 0x1f]), ("ancestor", [0xd1, 0x49, 0x00]), ("teardown", [0x7b, 0x1f, 0xa2])]
    {
        assert!(picture.count(rgb) > 300, "little or no {fate} colour in the picture");
    }
    lab.finish();
}

#[test]
fn many_signals_in_one_millisecond_are_stacked_not_overdrawn() {
    assert!(nix::unistd::geteuid().is_root(), "tracing needs root");
    let lab = Lab::new();
    let svg_path = lab.data.path().join("burst.svg");
    lab.start(&["run", "-d", "--name", "burst", "--nest", "2", "--", "pidlab", "probe", "--catch", "USR1"]);
    let record: Value =
        serde_json::from_slice(&std::fs::read(lab.state.path().join("burst/sandbox.json")).unwrap()).unwrap();
    let pid1 = record["pid1"]["pid"].as_i64().unwrap() as i32;
    let probe = children(pid1)[0];
    let mut tracer = Running::start(&mut lab.cmd(&[
        "trace",
        "burst",
        "--format",
        "json",
        "--svg",
        svg_path.to_str().unwrap(),
    ]));
    tracer.expect_line("\"event\":\"tracing\"", T);
    // Ten at once, from this process: most are "already pending".
    for _ in 0..10 {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(probe), nix::sys::signal::Signal::SIGUSR1).unwrap();
    }
    lab.ok(&["kill", "burst"]);
    let out = tracer.finish(T);
    assert_eq!(out.code(), 0, "{out:?}");
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] != "tracing" && e["event"] != "verdict")
        .collect();
    let svg = std::fs::read_to_string(&svg_path).expect("the picture was written");
    check_structure(&svg, &events);
    assert_eq!(groups(&svg, "namespace").len(), 2, "two nested PID namespaces, two boxes");
    // The ten arrows' labels: no two on one line (rows at least a label apart).
    let mut ys: Vec<f64> = Vec::new();
    for arrow in svg.split("<g class=\"signal\"").skip(1) {
        let text = &arrow[arrow.find("<text").unwrap()..];
        ys.push(attribute(text, "y").parse().unwrap());
    }
    assert!(ys.len() >= 10, "{ys:?}");
    ys.sort_by(f64::total_cmp);
    assert!(ys.windows(2).all(|w| w[1] - w[0] >= 20.0), "labels overlap: {ys:?}");
    let picture = Rendered::of(&svg_path);
    assert_eq!(picture.width, 1280);
    assert!(picture.count([0x1a, 0x7f, 0x37]) > 300, "the handled USR1 is drawn in green");
    lab.finish();
}

#[test]
fn run_trace_svg_draws_the_foreground_stop() {
    assert!(nix::unistd::geteuid().is_root(), "tracing needs root");
    let state = private_tmp();
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("run.svg");
    let mut cmd = pidlab([
        "run",
        "--trace",
        "--svg",
        svg_path.to_str().unwrap(),
        "--stop-after",
        "0.5",
        "--stop-timeout",
        "1",
        "--cmd",
        "pidlab probe --on-term-save /tmp/s",
    ]);
    cmd.env("PIDLAB_STATE_DIR", state.path());
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 137, "{out:?}");
    let svg = std::fs::read_to_string(&svg_path).expect("run --trace --svg wrote the picture");
    // The timeline on stderr numbers each signal sent as "SIG... -> target".
    let sent = out.stderr.lines().filter(|l| l.contains("s  SIG") && l.contains(" -> ")).count();
    assert_eq!(groups(&svg, "signal").len(), sent, "one arrow per signal of the timeline: {}", out.stderr);
    assert!(groups(&svg, "signal").iter().any(|a| attribute(a, "data-fate") == "dropped"));
    let picture = Rendered::of(&svg_path);
    assert!(picture.width == 1280 && picture.height >= 720);
    assert!(sandboxes_in(state.path()).is_empty(), "the traced run leaves no state");
}

#[test]
fn svg_refuses_a_file_it_cannot_write_before_tracing() {
    let lab = Lab::new();
    let bad = lab.data.path().join("no-such-dir/x.svg");
    let out = lab.run(&["trace", "anything", "--svg", bad.to_str().unwrap()]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(
        out.stderr.contains(bad.to_str().unwrap()) && out.stderr.contains("directory you can write to"),
        "names the file and the fix: {}",
        out.stderr
    );
    let out = lab.run(&["run", "--svg", "x.svg", "--", "true"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("--trace"), "--svg needs --trace: {}", out.stderr);
}

/// The SVGs inlined in an HTML page.
fn inline_svgs(html: &str) -> Vec<&str> {
    html.match_indices("<svg ")
        .map(|(at, _)| &html[at..at + html[at..].find("</svg>").unwrap() + 6])
        .collect()
}

#[test]
fn the_demo_page_has_the_table_and_a_rendered_trace_per_scenario() {
    assert!(nix::unistd::geteuid().is_root(), "the demo's traces need root");
    require("/usr/bin/redis-server", "apt-get install redis-server (.ci/run does)");
    require("/usr/bin/redis-cli", "apt-get install redis-tools (.ci/run does)");
    require("/usr/bin/tini", "apt-get install tini (.ci/run does)");
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("demo.html");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/redis-stop.sh");
    let mut cmd = Command::new("bash");
    cmd.args([script, "--grace", "1", "--format", "json", "--html", page.to_str().unwrap()])
        .env("PIDLAB", bin());
    let out = run_within(cmd, Duration::from_secs(180));
    assert_eq!(out.code(), 0, "{out:?}");
    let rows: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 6, "{out:?}");

    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert!(!html.contains("<script") && !html.contains("src="), "self-contained, nothing to fetch");
    assert!(!html.contains("class=\"missing\""), "a scenario has no picture: {}", out.stderr);
    assert_eq!(html.matches("<tr><td>").count(), 6, "a table row per scenario");
    let sections: Vec<&str> = html.split("<section class=\"scenario\"").skip(1).collect();
    assert_eq!(sections.len(), 6);
    for (row, section) in rows.iter().zip(&sections) {
        let name = row["scenario"].as_str().unwrap().replace('&', "&amp;");
        assert!(section.contains(&format!("<h2>{name}</h2>")), "sections in the table's order: {name}");
        assert_eq!(inline_svgs(section).len(), 1, "{name}: one picture");
    }
    // What the table says is what the pictures show: dash drops SIGTERM at
    // PID 1; in exec form redis-server's handler takes it.
    let dropped = |s: &str| inline_svgs(s)[0].contains("data-fate=\"dropped\" data-signal=\"SIGTERM\"");
    let handled = |s: &str| inline_svgs(s)[0].contains("data-fate=\"handler\" data-signal=\"SIGTERM\"");
    assert!(dropped(sections[1]) && !handled(sections[1]), "shell form, dash");
    assert!(handled(sections[0]) && !dropped(sections[0]), "exec form");

    for (i, svg) in inline_svgs(&html).into_iter().enumerate() {
        let file = dir.path().join(format!("scenario-{i}.svg"));
        std::fs::write(&file, svg).unwrap();
        let picture = Rendered::of(&file);
        assert_eq!(picture.width, 1280, "scenario {i}");
        let inked = picture.inked() as f64 / (picture.width * picture.height) as f64;
        assert!(inked > 0.02, "scenario {i}'s picture is (nearly) blank: {inked:.3}");
    }
}

#[test]
fn the_demo_refuses_a_page_it_cannot_write_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("no-such-dir/demo.html");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/redis-stop.sh");
    let mut cmd = Command::new("bash");
    cmd.args([script, "--html", page.to_str().unwrap()]).env("PIDLAB", bin());
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("cannot write the file"), "names the problem and the fix: {}", out.stderr);
    assert!(!out.stdout.contains("=="), "nothing ran: {}", out.stdout);
}

/// The first `<rect>` after `opening` in `svg`: x, y, width, height.
fn rect_after(svg: &str, opening: &str) -> [f64; 4] {
    let at = svg.find(opening).unwrap();
    let rect = &svg[at + svg[at..].find("<rect").unwrap()..];
    let rect = &rect[..rect.find("/>").unwrap()];
    ["x", "y", "width", "height"].map(|name| attribute(rect, name).parse().unwrap())
}

fn inside(inner: [f64; 4], outer: [f64; 4]) -> bool {
    inner[0] >= outer[0]
        && inner[1] >= outer[1]
        && inner[0] + inner[2] <= outer[0] + outer[2]
        && inner[1] + inner[3] <= outer[1] + outer[3]
}

/// `inspect --svg FILE`: every process of the tree is drawn, in the box of
/// its own PID namespace level (and so inside every box around it), with
/// the outcome `inspect --tree` gives it; the picture renders.
#[test]
fn inspect_svg_draws_each_process_inside_its_namespace_box() {
    let lab = Lab::new();
    // A long process name (comm keeps 15 bytes), whose label must still
    // fit its box.
    let script = "cp /usr/bin/sleep /tmp/database-server-main; /tmp/database-server-main 100 & \
                  pidlab probe --catch TERM & wait";
    lab.ok(&["run", "-d", "--name", "boxes", "--nest", "2", "--", "sh", "-c", script]);
    wait_until(T, "the probe is ready", || lab.ok(&["logs", "boxes"]).contains("probe: ready"));
    wait_until(T, "the long-named process", || {
        lab.ok(&["inspect", "--tree", "boxes"]).contains("database-server")
    });
    let doc: Value =
        serde_json::from_str(&lab.ok(&["inspect", "--tree", "--format", "json", "boxes"])).unwrap();
    let mut processes = Vec::new();
    let mut todo = vec![&doc["tree"]];
    while let Some(node) = todo.pop() {
        processes.push(node);
        todo.extend(node["children"].as_array().unwrap());
    }
    assert_eq!(processes.len(), 4, "pidlab:nest-1, sh, the probe, database-server: {doc}");
    let file = lab.tmp.path().join("tree.svg");
    lab.ok(&["inspect", "--svg", file.to_str().unwrap(), "boxes"]);
    let svg = std::fs::read_to_string(&file).unwrap();
    let picture = Rendered::of(&file);
    assert!(picture.width >= 1280 && picture.inked() > 10_000, "{}x{}", picture.width, picture.height);
    let levels: Vec<[f64; 4]> = (0..3)
        .map(|level| rect_after(&svg, &format!("<g class=\"namespace\" data-level=\"{level}\"")))
        .collect();
    assert!(inside(levels[2], levels[1]) && inside(levels[1], levels[0]), "nested boxes: {levels:?}");
    assert_eq!(groups(&svg, "process").len(), 4, "one drawing a process");
    for process in processes {
        let pid = process["host_pid"].as_i64().unwrap();
        let level = process["nspid"].as_array().unwrap().len() - 1;
        let opening = format!("<g class=\"process\" data-host-pid=\"{pid}\"");
        let tag = groups(&svg, "process").into_iter().find(|g| g.starts_with(&opening)).expect("drawn");
        assert_eq!(attribute(tag, "data-level"), level.to_string(), "{tag}");
        assert_eq!(attribute(tag, "data-outcome"), process["outcome"].as_str().unwrap(), "{tag}");
        let rect = rect_after(&svg, &opening);
        assert!(inside(rect, levels[level]), "{pid} at level {level}: {rect:?} not in {:?}", levels[level]);
        // Its first line, "COMM PIDS" in 18 px bold: about 0.6 em a
        // character in DejaVu Sans Bold, so it needs that much room.
        let pids = process["nspid"].as_array().unwrap().iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let label = format!("{} {}", process["comm"].as_str().unwrap(), pids.join("/"));
        assert!(rect[2] >= label.chars().count() as f64 * 18.0 * 0.6 + 12.0, "{label:?} overflows {rect:?}");
        if level < 2 {
            assert!(!inside(rect, levels[level + 1]), "{pid} drawn in a deeper level's box");
        }
    }
    lab.finish();
}
