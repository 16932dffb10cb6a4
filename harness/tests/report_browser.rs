//! The HTML report of `synod compare --out DIR` in a real browser: headless Chromium
//! loads `index.html` without a console error or a failed load, and its screenshot
//! shows charts drawn in the protocols' colors, not a blank page.
//!
//! The browser is Debian's `chromium` (`.ci/run` installs it). Without one these
//! tests print why and pass: the only skip.
//!
//! How errors are detected: the report has no script of its own, so the test loads
//! a copy of it with a probe script put first in its `<head>` (before the page's
//! Content-Security-Policy, which would block it). The probe records what a
//! DevTools console would show as an error — uncaught exceptions, `console.error`,
//! resources that failed to load, loads the policy blocked, unhandled rejections —
//! and on `load` writes them into `<pre id="synod-probe">`, which `--dump-dom` prints.
//! Chromium's own console log on stderr is read too, for uncaught errors and policy
//! refusals. Two tests feed deliberately broken pages to prove the detector sees each
//! kind.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use synod_harness::compare::html::{CONTENT_SECURITY_POLICY, PALETTE};

/// How long one page load may take before the browser is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// The window: the report's layout width, and tall enough for the small plan's
/// whole page.
const WINDOW: (u32, u32) = (1280, 4200);

/// Debian's chromium, else the first Chromium or Chrome on `PATH`.
fn browser() -> Option<PathBuf> {
    let debian = Path::new("/usr/bin/chromium");
    if debian.is_file() {
        return Some(debian.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let mut found = names
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)));
    found.find(|p| p.is_file())
}

/// The browser, or `None` after saying why the test does nothing.
fn browser_or_skip() -> Option<PathBuf> {
    let found = browser();
    if found.is_none() {
        // Straight to stderr, not `eprintln!`: the test harness would swallow that
        // for a passing test, and the skip must show in CI's log.
        let skip = "skipped: no chromium found (install Debian's chromium)";
        let _ = writeln!(std::io::stderr(), "{skip}");
    }
    found
}

/// Records page errors and, on `load`, writes them (one per line) into
/// `<pre id="synod-probe" data-loaded="1">`, kept up to date after that. Failed loads
/// of images, styles and scripts are `error` events that do not bubble, hence the
/// capturing listener.
const PROBE: &str = r#"<script>(function () {
  var seen = [];
  function note(m) {
    seen.push(String(m).replace(/\n/g, ' '));
    var out = document.getElementById('synod-probe');
    if (out) { out.textContent = seen.join('\n'); }
  }
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) { note('failed to load ' + (t.src || t.href)); }
    else { note('uncaught ' + e.message); }
  }, true);
  window.addEventListener('unhandledrejection', function (e) { note('unhandled rejection ' + e.reason); });
  document.addEventListener('securitypolicyviolation', function (e) {
    note('blocked by the page policy: ' + e.blockedURI + ' (' + e.violatedDirective + ')');
  });
  var error = console.error;
  console.error = function () {
    note('console.error ' + Array.prototype.join.call(arguments, ' '));
    return error.apply(console, arguments);
  };
  window.addEventListener('load', function () {
    var out = document.createElement('pre');
    out.id = 'synod-probe';
    out.setAttribute('data-loaded', '1');
    out.textContent = seen.join('\n');
    document.body.appendChild(out);
  });
})();</script>"#;

/// What Chromium made of a page.
struct Loaded {
    /// The DOM after `load`, as `--dump-dom` prints it.
    dom: String,
    /// Chromium's log (`--enable-logging=stderr`).
    log: String,
    screenshot: PathBuf,
}

/// Loads a probed copy of `page` (in the same directory, so relative URLs resolve
/// alike) in headless Chromium with a fresh profile; kills it after
/// [`BROWSER_TIMEOUT`].
fn load(browser: &Path, page: &Path) -> Loaded {
    let html = std::fs::read_to_string(page).expect("page readable");
    let head = html.find("<head>").expect("the page has a <head>") + "<head>".len();
    let probed = page.with_file_name("probed.html");
    std::fs::write(
        &probed,
        format!("{}{PROBE}{}", &html[..head], &html[head..]),
    )
    .unwrap();
    let work = tempfile::tempdir().expect("temp dir");
    let screenshot = page.with_file_name("screenshot.png");
    let (dom_path, log_path) = (work.path().join("dom.html"), work.path().join("log.txt"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.path().join("profile").display()
        ))
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", probed.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom_path).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        // Its own process group, so that a timeout ends its helpers too.
        .process_group(0)
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    while child.try_wait().expect("chromium waitable").is_none() {
        if start.elapsed() > BROWSER_TIMEOUT {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "chromium did not finish loading {} in {BROWSER_TIMEOUT:?}",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Loaded {
        dom: std::fs::read_to_string(&dom_path).unwrap_or_default(),
        log: std::fs::read_to_string(&log_path).unwrap_or_default(),
        screenshot,
    }
}

/// The detector: every error the page raised, from the probe's report and from
/// Chromium's console log. A page whose probe never reported is itself an error.
fn page_errors(loaded: &Loaded) -> Vec<String> {
    let open = "<pre id=\"synod-probe\" data-loaded=\"1\">";
    let mut errors: Vec<String> = match loaded.dom.split_once(open) {
        Some((_, rest)) => {
            let report = rest.split("</pre>").next().unwrap_or("");
            let report = report
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            report
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        }
        None => vec!["the page never reported `load` (no probe in the DOM)".to_string()],
    };
    let console = loaded.log.lines().filter(|l| l.contains(":CONSOLE"));
    let is_error = |l: &&str| {
        ["Uncaught", "violates", "Failed to load"]
            .iter()
            .any(|e| l.contains(e))
    };
    errors.extend(console.filter(is_error).map(|l| format!("console: {l}")));
    errors
}

/// Every `<svg>…</svg>` of `page`.
fn svgs(page: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("every <svg> closed") + start + 6;
        found.push(&rest[start..end]);
        rest = &rest[end..];
    }
    found
}

/// The screenshot's pixels as RGB.
fn pixels(png_path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::fs::File::open(png_path).expect("chromium wrote a screenshot");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let step = info.color_type.samples();
    assert!(step >= 3, "an RGB(A) screenshot, not {:?}", info.color_type);
    let rgb = buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]]);
    (info.width, info.height, rgb.collect())
}

fn rgb(hex: &str) -> [u8; 3] {
    let channel = |i: usize| u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap();
    [channel(0), channel(1), channel(2)]
}

#[test]
fn compare_report_loads_cleanly_and_draws_its_charts() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    // init: a tiny plan, two protocols (colors 0 and 1), with the split.
    let out = tempfile::tempdir().expect("temp dir");
    let run = Command::new(env!("CARGO_BIN_EXE_synod"))
        .args(["compare", "--protocols", "raft,vvsync", "--workloads", "kv"])
        .args([
            "--profiles",
            "none,partition",
            "--seeds",
            "1",
            "--duration",
            "0.3",
        ])
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("synod runs");
    let said = String::from_utf8_lossy(&run.stdout);
    // 1 is "a promise was broken": the report is still written, and shows it.
    assert!(
        matches!(run.status.code(), Some(0 | 1)),
        "{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let page_path = out.path().join("index.html");
    let page = std::fs::read_to_string(&page_path).expect("compare --out wrote index.html");
    let charts = svgs(&page);
    assert!(
        charts.len() >= 8,
        "throughput, latency, CDFs, availability, costs: {}",
        charts.len()
    );
    for svg in &charts {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    }

    // act
    let loaded = load(&browser, &page_path);

    // check: nothing went wrong, and the charts are drawn in the protocols' colors.
    let errors = page_errors(&loaded);
    assert!(
        errors.is_empty(),
        "the report raised errors:\n{}",
        errors.join("\n")
    );
    let (width, height, px) = pixels(&loaded.screenshot);
    assert_eq!((width, height), WINDOW, "the window's size");
    let ink = px.iter().filter(|p| p.iter().any(|&c| c < 235)).count();
    assert!(
        ink * 100 > px.len() * 4,
        "a mostly blank page: {ink} of {} pixels drawn",
        px.len()
    );
    for (protocol, color) in [("raft", PALETTE[0]), ("vvsync", PALETTE[1])] {
        let rows: Vec<usize> = (px.iter().enumerate())
            .filter(|(_, p)| **p == rgb(color))
            .map(|(i, _)| i / width as usize)
            .collect();
        assert!(
            rows.len() > 2000,
            "{protocol}'s color {color} drawn in {} pixels",
            rows.len()
        );
        let mut bands: Vec<usize> = rows.iter().map(|r| r / 250).collect();
        bands.dedup();
        assert!(
            bands.len() >= 5,
            "{protocol}'s color in several charts, down the page: {bands:?}"
        );
    }
}

/// Writes `html` to a fresh directory and returns what the detector reports for it.
fn detect(browser: &Path, html: &str, extra_files: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in extra_files {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    let page = dir.path().join("page.html");
    std::fs::write(&page, html).unwrap();
    page_errors(&load(browser, &page))
}

#[test]
fn detector_reports_uncaught_errors_console_errors_and_failed_loads() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let page = r#"<!DOCTYPE html><html><head><meta charset="utf-8"/><title>broken</title></head><body>
<p>broken on purpose</p>
<img src="missing.png" alt="nowhere"/>
<script>console.log("just a log");</script>
<script>console.error("bad " + 42);</script>
<script>throw new Error("boom");</script>
</body></html>"#;
    let errors = detect(&browser, page, &[]).join("\n");
    for expected in [
        "uncaught Uncaught Error: boom",
        "console.error bad 42",
        "failed to load file://",
    ] {
        assert!(
            errors.contains(expected),
            "`{expected}` reported in:\n{errors}"
        );
    }
    assert!(errors.contains("missing.png"), "{errors}");
    assert!(
        !errors.contains("just a log"),
        "a log is not an error:\n{errors}"
    );
}

#[test]
fn detector_reports_loads_the_report_policy_blocks() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    // The files exist: only the report's Content-Security-Policy stops them.
    let page = format!(
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"/>
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}"/>
<link rel="stylesheet" href="present.css"/><title>fetches</title></head>
<body><p>fetches on purpose</p><div style="background:url(present.png)">x</div></body></html>"#
    );
    let errors = detect(&browser, &page, &["present.css", "present.png"]).join("\n");
    // The policy event names only the scheme of a file: URL; Chromium's log names the file.
    assert!(
        errors.contains("blocked by the page policy: file (style-src-elem)"),
        "{errors}"
    );
    for blocked in ["present.css", "present.png"] {
        let refused = |l: &&str| l.contains(blocked) && l.contains("violates");
        assert!(
            errors.lines().any(|l| refused(&l)),
            "{blocked} refused, in:\n{errors}"
        );
    }
    // And a clean page is clean: the detector does not cry wolf.
    let clean = "<!DOCTYPE html><html><head><title>ok</title></head><body><p>ok</p></body></html>";
    assert_eq!(detect(&browser, clean, &[]), Vec::<String>::new());
}
