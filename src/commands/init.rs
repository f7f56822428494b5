//! `batchproof init` writes a commented starter scenario; `batchproof completions` prints
//! a shell's completion script; and the built-in smoke scenario lets an installed
//! `batchproof run` work outside the checkout.

use crate::commands::stdout::{sayln, tell};
use std::path::{Path, PathBuf};

use batchproof::run::exit;

use crate::cli::Starter;

/// `scenarios/smoke.yaml` and the profile it names, built into the binary.
const SMOKE: &str = include_str!("../../scenarios/smoke.yaml");
const DEFAULT_PROFILE: &str = include_str!("../../mock/default.yaml");

/// The scenario `batchproof run` runs without one: `scenarios/smoke.yaml` when there is
/// one here (the checkout), else the built-in copy, written with the profile it names
/// into a folder of its own under the system's temporary directory.
pub fn default_scenario() -> std::io::Result<PathBuf> {
    let here = PathBuf::from("scenarios/smoke.yaml");
    if here.is_file() {
        return Ok(here);
    }
    let dir = std::env::temp_dir().join(format!("batchproof-builtin-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("scenarios"))?;
    std::fs::create_dir_all(dir.join("mock"))?;
    std::fs::write(dir.join("mock/default.yaml"), DEFAULT_PROFILE)?;
    let path = dir.join("scenarios/smoke.yaml");
    std::fs::write(&path, SMOKE)?;
    tell!("note: no scenarios/smoke.yaml here; running the built-in smoke scenario");
    Ok(path)
}

const HEADER: &str = "# A starter scenario written by `batchproof init`. Every key is documented in\n\
# scenarios/README.md of the batchproof repository; `batchproof validate FILE` checks it,\n\
# `batchproof plan FILE` shows what it would send, `batchproof run FILE` runs it.\n";

fn template(kind: Starter, name: &str) -> String {
    let body = match kind {
        Starter::Smoke => format!(
            r#"name: {name}
description: a short open-model load against the embedded mock; every result must come back once.
# The embedded mock, started in-process on a free loopback port: no account, no network.
# time_scale 100 runs processing 100× faster than the real API.
target:
  mock: {{time_scale: 100}}
load:
  model: open            # batches on a schedule, whatever the target's latency
  phases:
    - ramp: 2s           # from 0 to 2 batches per second
      to: 2
    - hold: 5s
      rate: 2
  inputs_per_batch: 100  # up to 1,000
  seed: 42               # the same seed sends the same inputs
inputs:
  file:
    url: "https://files.example.com/invoices/b{{{{batch}}}}/{{{{index}}}}.pdf"
  metadata:
    customer: "cust-{{{{random:1-50}}}}"
results:
  via: both              # a signed-webhook receiver and polling
  deadline: 30s          # how long to wait for the last result
thresholds:
  - "runs.missing == 0"
  - "runs.duplicates == 0"
  - "submit.p99 < 2s"
  - "e2e.p95 < 20s"
"#
        ),
        Starter::Capacity => format!(
            r#"name: {name}
description: a capacity rehearsal against a real endpoint, paced under the plan's limits and held to a budget.
# The target comes from the environment: TARGET_URL=https://api.extend.ai batchproof run FILE
# The API key is read from EXTEND_API_KEY.
target:
  url: "${{TARGET_URL}}"
# The plan's published limits (payg, scale, enterprise); the submitters, the poller and the
# probes pace themselves under them. Override any: run_rps, write_rps, get_rps.
limits: {{plan: scale}}
# The cost guard: the run refuses to start if it could create more runs than this.
budget: {{max_runs: 5000}}
load:
  model: open
  phases:
    - ramp: 30s
      to: 0.1
    - hold: 30s
      rate: 0.1
  inputs_per_batch: 1000
  seed: 7
inputs:
  file:
    url: "https://files.example.com/bulk/{{{{batch}}}}-{{{{index}}}}.pdf"
results:
  via: polling           # or webhooks, with results.webhooks.public_url reachable by the API
  polling: {{interval: 5s}}
  deadline: 2h
thresholds:
  - "runs.missing == 0"
  - "runs.failed.rate < 5%"
# Project a bulk job of this size from the run's own rates.
project:
  files: 50000
"#
        ),
        Starter::Conformance => format!(
            r#"name: {name}
description: contract conformance against the embedded mock (point target.url at a real endpoint to check it).
target:
  mock: {{time_scale: 100}}
load:
  phases: [{{hold: 3s, rate: 2}}]
  inputs_per_batch: 50
results:
  via: both
  deadline: 60s
# Every contract rule (`batchproof checks` lists them), with the active probes. Narrow
# with ids or families, e.g. include: [batch, runs.metadata]. Failed rules of severity
# error fail the run; report.junit.xml has one test case per rule.
checks:
  probes: true
thresholds:
  - "rules.failed == 0"
  - "runs.missing == 0"
"#
        ),
    };
    format!("{HEADER}{body}")
}

/// `batchproof init [NAME] --kind K`: writes NAME.yaml (never over an existing file).
pub fn init(name: &str, kind: Starter, dir: &Path) -> u8 {
    let path = dir.join(format!("{name}.yaml"));
    if path.exists() {
        tell!(
            "error: {} exists; pick another name (batchproof init NAME)",
            path.display()
        );
        return exit::INVALID;
    }
    match std::fs::write(&path, template(kind, name)) {
        Ok(()) => {
            sayln!(
                "wrote {}; next: batchproof validate {0} && batchproof plan {0}",
                path.display()
            );
            exit::PASSED
        }
        Err(e) => {
            tell!("error: cannot write {}: {e}", path.display());
            exit::ABORTED
        }
    }
}

/// `batchproof completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "batchproof", &mut script);
    crate::commands::stdout::write_bytes(&script);
    exit::PASSED
}
