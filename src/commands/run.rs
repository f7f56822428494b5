//! `batchproof run`, `validate`, `resume` and `report --from-journal`: the commands that
//! work on a scenario or a run's folder.

use std::path::{Path, PathBuf};

use batchproof::run::{self, ProgressMode, RunOptions, exit};
use batchproof::scenario::{Scenario, Target};

use super::{finish, signals};
use crate::cli;

impl From<cli::Progress> for ProgressMode {
    fn from(p: cli::Progress) -> Self {
        match p {
            cli::Progress::Auto => ProgressMode::Auto,
            cli::Progress::Bars => ProgressMode::Bars,
            cli::Progress::Lines => ProgressMode::Lines,
            cli::Progress::None => ProgressMode::None,
        }
    }
}

/// `batchproof run`.
pub async fn run(mut opts: RunOptions) -> u8 {
    opts.stop = Some(signals::stop_on_signal());
    let scenario = match run::prepare(&opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    finish(run::run_scenario(scenario, &opts).await)
}

/// `batchproof validate`: exit 0 if every file is valid, 2 otherwise.
pub fn validate(files: &[PathBuf]) -> u8 {
    let mut code = exit::PASSED;
    for f in files {
        match Scenario::load(f) {
            Ok(s) => println!(
                "{}: ok ({} phase(s), {} threshold(s), target {})",
                f.display(),
                s.load.phases.len(),
                s.thresholds.len(),
                match &s.target {
                    Target::Mock { .. } => "embedded mock".to_string(),
                    Target::Url { url, .. } => url.clone(),
                }
            ),
            Err(e) => {
                eprintln!("error: {e}");
                code = exit::INVALID;
            }
        }
    }
    code
}

/// `batchproof resume DIR`.
pub async fn resume(dir: &Path, token_env: &str) -> u8 {
    let stop = signals::stop_on_signal();
    finish(batchproof::resume::resume(dir, token_env, stop).await)
}

/// `batchproof report --from-journal DIR`.
pub fn report_from_journal(dir: &Path) -> u8 {
    finish(batchproof::resume::report_from_journal(dir))
}
