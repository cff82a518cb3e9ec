//! `outreach report`: wires the command line to the `report` crate, which
//! reads the analyst tables through the sink and writes the HTML file.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A program to report on (its program_id); repeat for more. Default:
    /// every program with figures in the period.
    #[arg(long = "program", value_name = "ID", value_parser = parse_program)]
    pub programs: Vec<String>,
    /// Only the work done in this region and the regions under it (a code
    /// of the region table: 620000 Gansu, CN China, MA Morocco); repeat for
    /// more.
    #[arg(long = "region", value_name = "CODE")]
    pub regions: Vec<String>,
    /// First day of the period (YYYY-MM-DD). Default: the first day with
    /// figures.
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last day of the period, inclusive (YYYY-MM-DD). Default: the last
    /// day with figures.
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// The language of the page: every sentence, label, unit and date
    /// (the figures are the same in both).
    #[arg(long, value_enum, default_value_t = Lang::En, value_name = "LANG")]
    pub lang: Lang,
    /// The HTML file to write (replaced if it exists).
    #[arg(long, default_value = "outreach-report.html", value_name = "FILE")]
    pub out: PathBuf,
}

/// `--lang`: the report crate's languages, as the command line spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// English
    En,
    /// Simplified Chinese (简体中文), in the register of the hospitals' reports
    #[value(name = "zh-CN")]
    ZhCn,
}

impl From<Lang> for ::report::Lang {
    fn from(l: Lang) -> Self {
        match l {
            Lang::En => ::report::Lang::En,
            Lang::ZhCn => ::report::Lang::ZhCn,
        }
    }
}

impl ReportArgs {
    pub fn filter(&self) -> anyhow::Result<::report::Filter> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            anyhow::ensure!(
                from <= to,
                "--from {from} is after --to {to}: give the first day of the period first"
            );
        }
        Ok(::report::Filter {
            programs: self.programs.clone(),
            regions: self.regions.clone(),
            from: self.from,
            to: self.to,
        })
    }
}

/// Writes the report; prints where.
pub async fn run(settings: &Settings, args: &ReportArgs) -> anyhow::Result<::report::Written> {
    let filter = args.filter()?;
    if let Some(file) = settings.database.sqlite_file()?
        && !file.exists()
    {
        anyhow::bail!(
            "{} (database.url) does not exist: point database.url at the pipeline's SQLite file (outreach demo writes outreach-demo.db)",
            file.display()
        );
    }
    let sink = crate::pipeline::connect(&settings.database).await?;
    // A database the pipeline never wrote to has no analyst tables: say
    // so, rather than "no such table".
    let written = ::report::write(
        &sink,
        &filter,
        args.lang.into(),
        &args.out,
        chrono::Utc::now(),
    )
    .await;
    sink.close().await;
    let written = written?;
    println!(
        "wrote {} ({} program(s), {} KiB): open it in a browser",
        written.path.display(),
        written.programs,
        written.bytes.div_ceil(1024)
    );
    Ok(written)
}

/// For clap: a program id of the contract.
fn parse_program(s: &str) -> Result<String, String> {
    schemas::Id::parse(s)
        .map(|id| id.as_str().to_owned())
        .ok_or_else(|| "a program id is 1-64 characters from [a-z0-9._:-]".to_owned())
}
