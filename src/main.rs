//! The `batchproof` binary: parse the command line, then hand it to one command in
//! `commands/`, which calls the library and maps the outcome to the documented exit code.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;

use batchproof::run::{RunOptions, exit};
use cli::{Cli, Command, LogFormat};
use commands::stdout::tell;

// Batch bodies are ~100-200 KB each and short-lived: glibc serves such sizes with a fresh
// mmap (and page faults) per allocation, which measurably slowed submission; mimalloc
// reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A closed stderr (`2>&1 | head -2`) must not stop the run: by default the
        // subscriber reports a failed write with `eprintln!`, which panics there.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tell!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ABORTED);
        }
    };
    ExitCode::from(runtime.block_on(dispatch(cli.command)))
}

async fn dispatch(command: Command) -> u8 {
    match command {
        Command::Mock {
            bind,
            profile,
            time_scale,
            seed,
            grade,
        } => commands::mock::serve(bind, profile, time_scale, seed, grade).await,
        Command::Grade(args) => commands::grade::grade(args).await,
        Command::Validate { files } => commands::run::validate(&files),
        Command::Init { name, kind } => {
            commands::init::init(&name, kind, std::path::Path::new("."))
        }
        Command::Completions { shell } => commands::init::completions(shell),
        command @ Command::Run { .. } => run(command).await,
        Command::Plan {
            scenario,
            target,
            mock_profile,
            from,
            shard,
        } => commands::run::plan(
            RunOptions {
                scenario,
                target,
                token_env: String::new(),
                out: ".".into(),
                progress: batchproof::run::ProgressMode::None,
                mock_profile,
                shard,
                stop: None,
                metrics_listen: None,
                time_scale: None,
            },
            from.as_deref(),
        ),
        Command::Forecast(args) => forecast(args).await,
        Command::Knee(args) => knee(args).await,
        Command::Resume { dir, token_env } => commands::run::resume(&dir, &token_env).await,
        Command::Report {
            from_journal: Some(dir),
            ..
        } => commands::run::report_from_journal(&dir),
        Command::Report {
            report,
            format,
            out,
            ..
        } => commands::reports::render(
            &report.expect("clap requires REPORT without --from-journal"),
            format,
            out.as_deref(),
        ),
        Command::Compare {
            base,
            new,
            tolerance,
            min_delta,
            out,
            allow_different,
        } => commands::reports::compare(
            &base,
            &new,
            &tolerance,
            &min_delta,
            out.as_deref(),
            allow_different,
        ),
        command @ Command::Merge { .. } => merge(command).await,
        Command::Checks { format, family } => {
            commands::checks(format == cli::ListFormat::Json, family.as_deref())
        }
    }
}

/// `batchproof run`: the options, the spending it may do, then the run.
async fn run(command: Command) -> u8 {
    let Command::Run {
        scenario,
        target,
        token_env,
        out,
        progress,
        mock_profile,
        shard,
        dry_run,
        max_runs,
        yes,
        metrics_listen,
        max_duration,
    } = command
    else {
        unreachable!("dispatch passes only Run")
    };
    let scenario = match scenario {
        Some(s) => s,
        None => match commands::init::default_scenario() {
            Ok(s) => s,
            Err(e) => {
                tell!("error: cannot write the built-in scenario: {e}");
                return exit::ABORTED;
            }
        },
    };
    let spend = commands::run::Spend {
        dry_run,
        max_runs,
        yes,
        max_duration,
    };
    commands::run::run(
        RunOptions {
            scenario,
            target,
            token_env: token_env.unwrap_or_default(),
            out,
            progress: progress.into(),
            mock_profile,
            shard,
            stop: None,
            metrics_listen,
            time_scale: None,
        },
        spend,
    )
    .await
}

async fn forecast(a: cli::ForecastArgs) -> u8 {
    commands::run::forecast(
        options(a.scenario, a.to, a.progress.into()),
        commands::run::ForecastJob {
            files: a.files,
            sample: a.sample,
        },
        commands::run::Spend {
            dry_run: false,
            max_runs: a.max_runs,
            yes: a.yes,
            max_duration: None,
        },
    )
    .await
}

/// `batchproof merge`: shard reports, or a folder of shard runs (`--shards DIR`).
async fn merge(command: Command) -> u8 {
    let Command::Merge {
        reports,
        shards,
        token_env,
        out,
        partial,
        wait,
        expect,
    } = command
    else {
        unreachable!("dispatch passes only Merge")
    };
    match shards {
        Some(dir) => {
            let when = commands::reports::Waiting { wait, expect };
            commands::reports::merge_shards(&dir, &token_env, &out, partial, when).await
        }
        None => commands::reports::merge(&reports, &out, partial),
    }
}

async fn knee(a: cli::KneeArgs) -> u8 {
    let knee = batchproof::run::knee::KneeOptions {
        start: a.start,
        ceiling: a.ceiling,
        step: a.step,
        precision: a.precision,
        inputs_per_batch: a.inputs_per_batch,
        rate_limit: a.limits != cli::KneeLimits::Processing,
        processing: a.limits != cli::KneeLimits::Requests,
        keep_up: 0.97,
        max_runs: a.max_runs,
        quiet: a.quiet,
    };
    let opts = options(a.scenario, a.to, a.progress.into());
    commands::run::knee(opts, knee, a.yes).await
}

fn options(
    scenario: std::path::PathBuf,
    to: cli::TargetArgs,
    progress: batchproof::run::ProgressMode,
) -> RunOptions {
    RunOptions {
        scenario,
        target: to.target,
        token_env: to.token_env.unwrap_or_default(),
        out: to.out,
        progress,
        mock_profile: to.mock_profile,
        shard: None,
        stop: None,
        metrics_listen: None,
        time_scale: to.time_scale,
    }
}
