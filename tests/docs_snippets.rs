//! The READMEs work as written. The verification snippets in `mock/README.md` are code a
//! client developer copies: each is extracted from the README and run (Python, Node)
//! against a delivery signed the way the mock signs, the same delivery tampered with, and
//! deliveries a receiver must refuse without raising (a header missing, a timestamp too
//! old or too far in the future). README.md's command lines are run as written (a local server standing
//! in for the real API), and each command of its table with real arguments.

use std::path::Path;
use std::process::Command;

use batchproof::webhook::signing;

/// The first fenced block of `lang` in mock/README.md.
fn snippet(lang: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("mock/README.md"))
            .unwrap();
    let start = readme
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no ```{lang} block in mock/README.md"))
        + lang.len()
        + 4;
    let len = readme[start..].find("```").expect("a closed block");
    readme[start..start + len].to_string()
}

/// Runs `program file` and returns its stdout; the test fails when the interpreter is
/// missing (CI installs both).
fn run(program: &str, file: &Path) -> String {
    let out = Command::new(program)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this test: {e}"));
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn case() -> (String, String, String, String) {
    let secret = "wss_docs_snippet_secret".to_string();
    let body = r#"{"eventId":"evt_1","eventType":"workflow_run.completed","payload":{"id":"workflow_run_1"}}"#;
    let ts = chrono::Utc::now().timestamp();
    let signature = signing::sign(&secret, ts, body.as_bytes());
    (secret, ts.to_string(), signature, body.to_string())
}

#[test]
fn the_python_verification_snippet_accepts_a_real_signature_and_refuses_a_tampered_body() {
    let (secret, ts, sig, body) = case();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("verify.py");
    let program = format!(
        "{}\nh = {{'x-extend-request-timestamp': {ts:?}, 'x-extend-request-signature': {sig:?}}}\nprint(verify({secret:?}, h, {body:?}.encode()), verify({secret:?}, h, {tampered:?}.encode()))\n",
        snippet("python"),
        tampered = body.replace("completed", "failed"),
    );
    std::fs::write(&file, program).unwrap();
    assert_eq!(run("python3", &file), "True False");
}

#[test]
fn the_node_verification_snippet_accepts_a_real_signature_and_refuses_a_tampered_body() {
    let (secret, ts, sig, body) = case();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("verify.js");
    let program = format!(
        "{}\nconst h = {{'x-extend-request-timestamp': {ts:?}, 'x-extend-request-signature': {sig:?}}};\nconsole.log(verify({secret:?}, h, Buffer.from({body:?})), verify({secret:?}, h, Buffer.from({tampered:?})));\n",
        snippet("js"),
        tampered = body.replace("completed", "failed"),
    );
    std::fs::write(&file, program).unwrap();
    assert_eq!(run("node", &file), "true false");
}

/// Deliveries a receiver meets, each with the verdict the snippets must reach: the genuine
/// one, and ones to refuse without raising (a header missing, a timestamp too old or
/// too far in the future though correctly signed, a signature padded past its length).
fn hostile_cases() -> Vec<(&'static str, String, bool)> {
    let secret = "wss_docs_snippet_secret";
    let body = r#"{"eventId":"evt_1","eventType":"workflow_run.completed","payload":{}}"#;
    let now = chrono::Utc::now().timestamp();
    let headers = |ts: Option<i64>, sig: Option<String>| {
        let mut h = Vec::new();
        if let Some(ts) = ts {
            h.push(format!(
                "'x-extend-request-timestamp': {:?}",
                ts.to_string()
            ));
        }
        if let Some(sig) = sig {
            h.push(format!("'x-extend-request-signature': {sig:?}"));
        }
        format!("{{{}}}", h.join(", "))
    };
    let signed = |ts: i64| Some(signing::sign(secret, ts, body.as_bytes()));
    [
        ("genuine", headers(Some(now), signed(now)), true),
        ("no timestamp header", headers(None, signed(now)), false),
        ("no signature header", headers(Some(now), None), false),
        ("no headers", headers(None, None), false),
        (
            "301 s old",
            headers(Some(now - 301), signed(now - 301)),
            false,
        ),
        (
            "300 s in the future",
            headers(Some(now + 300), signed(now + 300)),
            false,
        ),
        (
            "90 s in the future",
            headers(Some(now + 90), signed(now + 90)),
            false,
        ),
        (
            "30 s in the future (within the SDKs' skew)",
            headers(Some(now + 30), signed(now + 30)),
            true,
        ),
        (
            "signature with a trailing 0",
            headers(Some(now), signed(now).map(|s| s + "0")),
            false,
        ),
    ]
    .into_iter()
    .map(|(name, h, ok)| (name, format!("{secret:?}, {h}, {body:?}"), ok))
    .collect()
}

/// Runs `snippet` on every hostile case (one call per line, `call` turning the arguments
/// into the language's call) and checks each verdict.
fn judge_hostile_cases(program: &str, ext: &str, snippet: String, call: fn(&str) -> String) {
    let cases = hostile_cases();
    let calls: Vec<String> = cases.iter().map(|(_, args, _)| call(args)).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("verify.{ext}"));
    std::fs::write(&file, format!("{snippet}\n{}\n", calls.join("\n"))).unwrap();
    let out = run(program, &file);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), cases.len(), "{out}");
    for ((name, _, ok), verdict) in cases.iter().zip(got) {
        assert_eq!(
            verdict.eq_ignore_ascii_case("true"),
            *ok,
            "{program} snippet on `{name}`: {verdict}"
        );
    }
}

#[test]
fn the_python_verification_snippet_refuses_missing_headers_and_future_timestamps() {
    judge_hostile_cases("python3", "py", snippet("python"), |args| {
        format!("print(verify({args}.encode()))")
    });
}

#[test]
fn the_node_verification_snippet_refuses_missing_headers_and_future_timestamps() {
    judge_hostile_cases("node", "js", snippet("js"), |args| {
        let (head, body) = args.rsplit_once(", ").unwrap();
        format!("console.log(verify({head}, Buffer.from({body})))")
    });
}

// ---------------------------------------------------------------------------------------
// README.md's command lines, run as written on this machine. A line against the real API
// runs against a local stand-in at the same place in the line; everything runs in a
// scratch folder holding copies of scenarios/ and mock/, so relative paths read as in a
// checkout and nothing is written into it.

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Every command line in README.md's ```sh blocks: comments dropped, `\` continuations
/// joined, `cargo run --release --` read as the installed binary.
fn readme_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut lines = Vec::new();
    for block in readme.split("```sh\n").skip(1) {
        let body = block.split("```").next().unwrap();
        let mut joined = String::new();
        for line in body.lines() {
            match line.strip_suffix('\\') {
                Some(part) => joined.push_str(part),
                None => {
                    joined.push_str(line);
                    let cmd = match joined.find("  #") {
                        Some(at) => &joined[..at],
                        None => &joined,
                    };
                    let cmd = cmd.trim().replace("cargo run --release --", "batchproof");
                    if !cmd.is_empty() && !cmd.starts_with('#') {
                        lines.push(cmd);
                    }
                    joined.clear();
                }
            }
        }
    }
    lines
}

/// The README's line that starts with `prefix` (the test fails when the README changed).
fn readme_line(prefix: &str) -> String {
    let lines = readme_lines();
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("README.md has no `{prefix}…` line in a sh block: {lines:#?}"))
        .clone()
}

/// A scratch folder with copies of scenarios/ and mock/.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["scenarios", "mock", "mock/defects"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(root().join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.path().join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    dir
}

/// `line` through `sh -c` in `dir`, with the built binary first on PATH.
fn shell(line: &str, dir: &Path) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_batchproof"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("TARGET_URL")
        .env_remove("RUST_LOG");
    cmd
}

fn sh(line: &str, dir: &Path) -> (Option<i32>, String, String) {
    let o = shell(line, dir).output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The report.json a run or merge printed (`report: …/report.json`), absolute.
fn report_json(stdout: &str, dir: &Path) -> String {
    let line = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("report: ")
                .filter(|p| p.ends_with("report.json"))
        })
        .unwrap_or_else(|| panic!("no report.json in: {stdout}"));
    dir.join(line).display().to_string()
}

#[tokio::test]
async fn the_readme_ci_example_plans_against_a_stand_in_and_the_run_asks_for_a_public_url() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::any};
    let api = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .mount(&api)
        .await;
    let dir = scratch();
    let real = "https://api.extend.ai";

    // `plan` sends nothing, so it plans a webhook scenario against a URL without refusing.
    let plan = readme_line("batchproof plan scenarios/conformance.yaml --target");
    let (code, out, err) = sh(&plan.replace(real, &api.uri()), dir.path());
    assert_eq!(code, Some(0), "{plan}: {out}{err}");
    let full = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        full.contains("what it would create: 2,141 runs at most")
            && out.contains("2141 created at most"),
        "the README's figure is the plan's: {out}"
    );
    assert!(
        err.contains("public_url"),
        "the plan notes what `run` needs: {err}"
    );

    // The run line refuses before its first request, with the fix the README gives.
    let run = readme_line("batchproof run scenarios/conformance.yaml --target");
    let (code, out, err) = sh(
        &format!("EXTEND_API_KEY=sk_test {}", run.replace(real, &api.uri())),
        dir.path(),
    );
    assert_eq!(code, Some(2), "{run}: {out}{err}");
    assert!(
        err.contains("results.webhooks.public_url") && err.contains("via: polling"),
        "{err}"
    );
    assert!(
        full.contains("set `results.webhooks.public_url`"),
        "the README says what to set"
    );
    assert!(
        api.received_requests().await.unwrap_or_default().is_empty(),
        "plan and a refused run send nothing"
    );
}

#[test]
fn the_readme_mock_example_answers_its_curl() {
    use std::io::BufRead;
    let dir = scratch();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = readme_line("batchproof mock --bind 127.0.0.1:8080");
    let mut mock = shell(
        &format!("exec {}", serve.replace("8080", &port.to_string())),
        dir.path(),
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = std::io::BufReader::new(mock.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("serving") {
        line.clear();
    }
    assert!(line.contains("serving"), "the mock did not start: {line}");
    let curl = readme_line("curl ");
    let (code, out, err) = sh(&curl.replace("8080", &port.to_string()), dir.path());
    let _ = mock.kill();
    let _ = mock.wait();
    assert_eq!(code, Some(0), "{curl}: {err}");
    let body: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(
        body.to_string().contains("batch_") || body.to_string().contains("batchId"),
        "an accepted batch: {body}"
    );
}

#[test]
fn the_readme_commands_run_as_written_on_this_machine() {
    let dir = scratch();
    let d = dir.path();
    let ok = |line: &str| {
        let (code, out, err) = sh(line, d);
        assert_eq!(code, Some(0), "`{line}`:\n{out}\n{err}");
        out
    };

    // The first command of the README: the smoke scenario on the embedded mock.
    let first = readme_line("batchproof run");
    assert_eq!(first, "batchproof run");
    let run = report_json(&ok(&first), d);

    // Shards side by side, then `merge` (the README's `merge SHARD.json… [--out DIR]`).
    let shards: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|s| {
            shell(
                &format!("batchproof run scenarios/smoke.yaml --shard {s} --out shards"),
                d,
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    let mut jsons = Vec::new();
    for o in &shards {
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        jsons.push(report_json(&out, d));
    }
    let merged = report_json(
        &ok(&format!(
            "batchproof merge {} --out merged",
            jsons.join(" ")
        )),
        d,
    );

    // `compare BASE.json NEW.json`: the merged shards against the whole run.
    let out = ok(&format!("batchproof compare {run} {merged} --out cmp"));
    assert!(out.contains("no regression"), "{out}");
    assert!(d.join("cmp/compare.html").exists());

    // `report RUN.json --format …` and `-o FILE`.
    for f in ["html", "md", "junit", "json"] {
        ok(&format!(
            "batchproof report {run} --format {f} -o again.{f}"
        ));
    }

    // `checks`: the rules the README counts.
    ok("batchproof checks");
    let rules: serde_json::Value =
        serde_json::from_str(&ok("batchproof checks --format json")).unwrap();
    // The contract rules (the client rules, family `client`, are `grade`'s).
    let n = rules
        .as_array()
        .or_else(|| rules["rules"].as_array())
        .map(|all| all.iter().filter(|r| r["family"] != "client").count());
    let full = std::fs::read_to_string(root().join("README.md")).unwrap();
    let n = n.expect("a JSON list of rules");
    assert!(
        full.contains(&format!("runs every rule of `batchproof checks` ({n},")),
        "{n} rules"
    );

    // `validate FILE…` over the shipped scenarios (capacity reads ${TARGET_URL}).
    ok("TARGET_URL=http://127.0.0.1:9 batchproof validate scenarios/*.yaml");

    // `init`, then the next steps it prints.
    let out = ok("batchproof init");
    let next = out
        .split("next: ")
        .nth(1)
        .unwrap_or_else(|| panic!("init prints the next step: {out}"))
        .trim()
        .to_string();
    ok(&next);
    ok("batchproof init mine --kind conformance && batchproof validate mine.yaml");

    // `completions bash`.
    assert!(ok("batchproof completions bash").contains("batchproof"));

    // The forecast of the capacity example, on the mock.
    let forecast = readme_line("batchproof forecast scenarios/capacity.yaml");
    let out = ok(&forecast);
    assert!(out.contains("FAILED"), "{out}");
}

#[test]
fn the_readme_ci_pipeline_with_timeout_and_tee_runs_as_written() {
    let dir = scratch();
    let line = readme_line("timeout -s TERM");
    assert!(
        readme_lines().iter().any(|l| l == "set -o pipefail"),
        "the README's pipeline sets pipefail"
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_batchproof"))
        .parent()
        .unwrap();
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail\n{line}"))
        .current_dir(dir.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{line}: {text}");
    let log = std::fs::read_to_string(dir.path().join("conformance.log")).unwrap();
    assert!(
        log.contains("PASSED") && log.contains("report.junit.xml"),
        "{log}"
    );
}
