//! Command-line definitions only (clap). `main.rs` turns these into plain option structs
//! so the library never sees clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "batchproof",
    version,
    about = "Load-testing and conformance harness for batch workflow-run APIs",
    long_about = "Load-testing and conformance harness for batch workflow-run APIs \
                  (Extend's Batch Run Workflow first).\n\n\
                  Exit codes: 0 every threshold met, no error rule failed; \
                  1 a threshold or an error rule failed; 2 invalid scenario or usage; \
                  3 target unreachable or run aborted; 4 harness fault (the accounting \
                  broke one of its own invariants; please report it)."
)]
pub struct Cli {
    /// Log line format on stderr (filter with RUST_LOG, e.g. RUST_LOG=batchproof=debug).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (default: scenarios/smoke.yaml on the embedded mock, built in when
    /// there is none here) and write reports.
    Run {
        /// The scenario file (default: scenarios/smoke.yaml, or the built-in copy).
        scenario: Option<PathBuf>,
        /// Send the load to this base URL instead of the scenario's target.
        #[arg(long)]
        target: Option<String>,
        /// Environment variable holding the API key (default: the scenario's
        /// `target.token_env`, else EXTEND_API_KEY).
        #[arg(long)]
        token_env: Option<String>,
        /// Folder for the reports (a run-specific folder is made inside it).
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Stop the run after this long (e.g. 20m) and write its partial report, marked
        /// incomplete (exit 3): a bound on the whole run, whatever its phases wait for.
        #[arg(long, value_name = "DURATION", value_parser = batchproof::config::parse_duration)]
        max_duration: Option<std::time::Duration>,
        /// Progress display: auto (bars on a terminal, log lines otherwise), bars, lines, none.
        #[arg(long, value_enum, default_value_t = Progress::Auto)]
        progress: Progress,
        /// Run against the embedded mock with this profile (e.g. a file in mock/defects/).
        #[arg(long, conflicts_with = "target")]
        mock_profile: Option<PathBuf>,
        /// Send only shard I of N (0-based) of the scenario's batches; merge the shards'
        /// reports with `batchproof merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<batchproof::scenario::Shard>,
        /// Print what the run would do (as `batchproof plan`) and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Against a URL target: the most runs this run may create (probes included);
        /// overrides the scenario's `budget.max_runs`.
        #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = run_count)]
        max_runs: Option<u64>,
        /// Against a URL target: start even without a budget, or over it.
        #[arg(long)]
        yes: bool,
        /// Serve live Prometheus metrics at http://ADDR/metrics while the run runs
        /// (e.g. 127.0.0.1:9464).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Forecast a bulk job from a sample of it: send a few of the job's batches (spread
    /// across it), follow them to the end, and report the whole job's time, credits,
    /// FAILED / NEEDS_REVIEW / REJECTED shares and latency, each with a 95 % interval.
    Forecast(ForecastArgs),
    /// Find the target's knee: offer a rising rate (doubling, then bisecting) until a
    /// step breaks the SLO (429s, runs finishing slower than offered, the scenario's
    /// thresholds), and report the highest rate that held and the first limit met.
    Knee(KneeArgs),
    /// Print what a run of the scenario would do, sending nothing: batches and runs per
    /// phase, the probes' runs, requests per rate-limit category against the plan's
    /// limits, duration, webhook registration, credits and the budget.
    Plan {
        /// The scenario file.
        scenario: PathBuf,
        /// Plan against this base URL instead of the scenario's target.
        #[arg(long)]
        target: Option<String>,
        /// Plan against the embedded mock with this profile.
        #[arg(long, conflicts_with = "target")]
        mock_profile: Option<PathBuf>,
        /// A report.json of an earlier run: price the plan at its credits per run.
        #[arg(long, value_name = "REPORT")]
        from: Option<PathBuf>,
        /// Plan shard I of N (`run --shard I/N`): what this shard may create, beside the
        /// whole against the budget.
        #[arg(long, value_name = "I/N")]
        shard: Option<batchproof::scenario::Shard>,
    },
    /// Render a saved report.json again, in any format; or, with --from-journal, write the
    /// partial report of a killed run from the journal in its report folder.
    Report {
        /// A report.json written by `run` or `merge`.
        #[arg(required_unless_present = "from_journal")]
        report: Option<PathBuf>,
        /// The report folder of a killed run: write its partial report (all formats, marked
        /// incomplete) from the journal there.
        #[arg(long, value_name = "DIR", conflicts_with = "report")]
        from_journal: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Finish a killed run: read its journal, collect the results of its accepted batches
    /// by polling (never submitting anything again), and write the complete report.
    Resume {
        /// The killed run's report folder (it holds journal.txt).
        dir: PathBuf,
        /// Environment variable holding the API key.
        #[arg(long, default_value = "EXTEND_API_KEY")]
        token_env: String,
    },
    /// Compare two runs; exit 1 if NEW regressed against BASE.
    Compare {
        base: PathBuf,
        new: PathBuf,
        /// Relative change tolerated before a metric counts as regressed.
        #[arg(long, default_value = "25%")]
        tolerance: String,
        /// Latency changes below this are noise, whatever their ratio.
        #[arg(long, default_value = "2ms")]
        min_delta: String,
        /// Folder for compare.md and compare.html (default: NEW's folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Compare runs of different scenarios (refused otherwise: not like for like).
        #[arg(long)]
        allow_different: bool,
    },
    /// Merge the reports of the shards of one scenario into one report.
    Merge {
        /// The shards' report.json files.
        #[arg(required_unless_present = "shards")]
        reports: Vec<PathBuf>,
        /// A folder of shard run folders (as `run --shard I/N --out DIR` leaves them):
        /// each shard's report is used, and a shard killed before it wrote one (an evicted
        /// pod) is first resumed from its journal — collecting, never submitting — or,
        /// where it cannot be, reported from its journal as incomplete.
        #[arg(long, value_name = "DIR", conflicts_with = "reports")]
        shards: Option<PathBuf>,
        /// Environment variable holding the API key, for resuming a killed shard.
        #[arg(long, default_value = "EXTEND_API_KEY")]
        token_env: String,
        /// Folder for the merged report (all formats).
        #[arg(long, default_value = "reports/merged")]
        out: PathBuf,
        /// Merge an incomplete shard set anyway: the report names the missing shards and
        /// is never passed.
        #[arg(long)]
        partial: bool,
        /// With --shards: wait this long (e.g. 3h) for shards still running (a fresh
        /// heartbeat) to write their reports. A live shard is never resumed as if killed;
        /// with no wait left, the merge refuses it (exit 2).
        #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = batchproof::config::parse_duration)]
        wait: std::time::Duration,
        /// With --shards and --wait: also wait until this many shards have a folder (pods
        /// still pending have none yet).
        #[arg(long, value_name = "N")]
        expect: Option<u64>,
    },
    /// List the contract rules: id, severity, versions, title and documentation.
    Checks {
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// Only this family: batch, auth, version, error, runs, list, webhook, or client
        /// (the rules `batchproof grade` judges a client integration by).
        #[arg(long)]
        family: Option<String>,
    },
    /// Check a scenario file without running it.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write a commented starter scenario, NAME.yaml, in the current folder.
    Init {
        /// The scenario's name and file name.
        #[arg(default_value = "batchproof")]
        name: String,
        /// Which starter: a smoke load on the mock, a capacity rehearsal against a real
        /// endpoint (paced, budgeted, projected), or a contract conformance check.
        #[arg(long, value_enum, default_value_t = Starter::Smoke)]
        kind: Starter,
    },
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Serve the stateful mock of the workflow-run API.
    Mock {
        /// Address to listen on, HOST:PORT (a host name is resolved, e.g. localhost:8080).
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// Profile YAML (default: the built-in mock/local.yaml, where batches drain over seconds).
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Override the profile's time scale (processing runs this many times faster).
        #[arg(long)]
        time_scale: Option<f64>,
        /// Override the profile's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Grade the client that uses this mock: record what it does, serve the grade
        /// live at /_mock/grade, and write the client report into DIR on shutdown.
        #[arg(long, value_name = "DIR")]
        grade: Option<PathBuf>,
    },
    /// Grade a client integration: start the mock (the sparring profile by default), run
    /// COMMAND with EXTEND_API_KEY and EXTEND_BASE_URL pointing at it, judge what the
    /// client did by the client rules and write the client report (JSON, Markdown, HTML,
    /// JUnit). Exit 0 when it broke no rule, 1 when it did or its command failed.
    #[command(
        after_help = "Example: batchproof grade -- python my_client.py\n\nThe command gets EXTEND_API_KEY, EXTEND_BASE_URL (= BATCHPROOF_MOCK_URL) and BATCHPROOF_WORKFLOW_ID."
    )]
    Grade(GradeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Md,
    Junit,
    Json,
}

/// Where `forecast` and `knee` send, and where their reports go.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Send to this base URL instead of the scenario's target.
    #[arg(long)]
    pub target: Option<String>,
    /// Environment variable holding the API key (default: the scenario's
    /// `target.token_env`, else EXTEND_API_KEY).
    #[arg(long)]
    pub token_env: Option<String>,
    /// Folder for the reports (a run-specific folder is made inside it).
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Use the embedded mock with this profile (e.g. mock/payg.yaml).
    #[arg(long, conflicts_with = "target")]
    pub mock_profile: Option<PathBuf>,
    /// Run the embedded mock this many times faster than real time (its rate limits
    /// and processing scale with it; figures are also given per real second). With a
    /// scenario whose target is a URL: the time scale the mock behind it runs at.
    #[arg(long, value_name = "N", conflicts_with = "target")]
    pub time_scale: Option<f64>,
}

/// `batchproof forecast`'s options.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// The scenario: the job's inputs, batch size and load model.
    pub scenario: PathBuf,
    /// Files in the whole job (default: one per row of the scenario's feeder).
    #[arg(long, value_name = "N")]
    pub files: Option<u64>,
    /// How much of the job to send: a number of batches (12) or a share (5%).
    #[arg(long, default_value = "10")]
    pub sample: batchproof::run::forecast::SampleSize,
    #[command(flatten)]
    pub to: TargetArgs,
    /// Progress display: auto, bars, lines, none.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// Against a URL target: the most runs the sample may create.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = run_count)]
    pub max_runs: Option<u64>,
    /// Against a URL target: start even without a budget, or over it.
    #[arg(long)]
    pub yes: bool,
}

/// `batchproof knee`'s options.
#[derive(Debug, Args)]
pub struct KneeArgs {
    /// The scenario: its inputs, results channel and thresholds (its load is replaced
    /// by the steps).
    pub scenario: PathBuf,
    /// First rate, batches per second.
    #[arg(long, default_value_t = 1.0)]
    pub start: f64,
    /// Highest rate ever offered, batches per second.
    #[arg(long, default_value_t = 10_000.0)]
    pub ceiling: f64,
    /// How long each step holds its rate.
    #[arg(long, default_value = "5s", value_parser = batchproof::config::parse_duration)]
    pub step: std::time::Duration,
    /// Stop when the bracket between held and broke is within this share.
    #[arg(long, default_value = "5%", value_parser = parse_share)]
    pub precision: f64,
    /// Inputs per batch in every step (default: the scenario's).
    #[arg(long, value_name = "N")]
    pub inputs_per_batch: Option<u64>,
    /// Which limits break a step: requests (429s), processing (runs finishing slower
    /// than offered), or both. The scenario's thresholds always apply.
    #[arg(long, value_enum, default_value_t = KneeLimits::Both)]
    pub limits: KneeLimits,
    #[command(flatten)]
    pub to: TargetArgs,
    /// The most runs the whole search may create (overrides the scenario's
    /// `budget.max_runs`): the search stops before a step that could pass it.
    #[arg(long, value_name = "N")]
    pub max_runs: Option<u64>,
    /// Between steps against a URL, leave the target alone this long (longer when it
    /// asked for more with Retry-After), so no step inherits the last one's limiter state.
    #[arg(long, default_value = "2s", value_parser = batchproof::config::parse_duration)]
    pub quiet: std::time::Duration,
    /// Progress display for each step: auto, bars, lines, none.
    #[arg(long, value_enum, default_value_t = Progress::None)]
    pub progress: Progress,
    /// Against a URL target: a knee search sends until something breaks, so it
    /// runs only when asked to.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KneeLimits {
    Requests,
    Processing,
    Both,
}

fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a share: write e.g. 5%"))?;
    let v = if s.ends_with('%') { v / 100.0 } else { v };
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!("`{s}` must be between 0 and 100%"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    Auto,
    Bars,
    Lines,
    None,
}

/// The starter scenarios `batchproof init` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Starter {
    Smoke,
    Capacity,
    Conformance,
}

/// `--max-runs N`: a whole number of runs ≥ 0, refused with the fix otherwise.
pub fn run_count(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| {
        format!(
            "`{s}` is not a number of runs: --max-runs is the most runs the command may create, a whole number ≥ 0 (e.g. --max-runs 2200)"
        )
    })
}

/// `batchproof grade`'s flags.
#[derive(Debug, Args)]
pub struct GradeArgs {
    /// Profile YAML (default: the built-in mock/sparring.yaml).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Where the client report goes (default: reports/grade-<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Address the mock listens on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: String,
    /// How long the client's command may run before it is stopped and failed.
    #[arg(long, default_value = "10m")]
    pub timeout: String,
    /// After the command ends, how long to wait for webhook deliveries in flight.
    #[arg(long, default_value = "15s")]
    pub settle: String,
    /// The client's command and its arguments (after `--`).
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}
