//! The pipeline as the benchmark runs it: the same binary as child
//! processes (`outreach run … --report FILE`), their peak RSS sampled from
//! `/proc` while they run, and their figures read back from that file as
//! a typed value ([`Figures`]) when they stop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::pipeline::Figures;

/// A pipeline process and the file it writes its figures to.
pub(super) struct Process {
    child: Child,
    /// Made exclusively under a random name (no planted file or symlink
    /// can stand in for it), removed with the process.
    report: tempfile::TempPath,
}

impl Process {
    pub(super) fn id(&self) -> u32 {
        self.child.id()
    }
}

/// Where the pipeline processes run: the benchmark's database, and the
/// settings file the benchmark was given (TLS, SASL, secret files).
pub(super) struct Target {
    pub db_url: String,
    pub config: Option<std::path::PathBuf>,
}

/// Starts `outreach ARGS` (`run …`) on the benchmark's topics and database.
pub(super) fn spawn(
    kafka: &ingest::KafkaSettings,
    target: &Target,
    args: &[&str],
) -> anyhow::Result<Process> {
    let report = tempfile::Builder::new()
        .prefix(&format!("{}.", kafka.group_id))
        .suffix(".figures.json")
        .tempfile()
        .context("creating the figures file")?
        .into_temp_path();
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    if let Some(file) = &target.config {
        command.arg("--config").arg(file);
    }
    let child = command
        .args(args)
        .arg("--report")
        .arg(&*report)
        .env("OUTREACH__KAFKA__BROKERS", &kafka.brokers)
        .env("OUTREACH__KAFKA__GROUP_ID", &kafka.group_id)
        .env("OUTREACH__KAFKA__MISSIONS_TOPIC", &kafka.missions_topic)
        .env("OUTREACH__KAFKA__ACTIVITIES_TOPIC", &kafka.activities_topic)
        .env("OUTREACH__KAFKA__DEADLETTER_TOPIC", &kafka.deadletter_topic)
        .env("OUTREACH__DATABASE__URL", &target.db_url)
        .env("OUTREACH__LOG__FORMAT", "json")
        .env("OUTREACH__HTTP__ADDRESS", "127.0.0.1:0")
        .env("OUTREACH__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the pipeline")?;
    Ok(Process { child, report })
}

/// One pipeline process's final figures.
#[derive(Debug, Default)]
pub(super) struct Run {
    pub peak_rss_bytes: u64,
    pub figures: Figures,
}

impl Run {
    pub(super) fn to_json(&self) -> Value {
        let f = &self.figures;
        json!({
            "peak_rss_mib": (self.peak_rss_bytes as f64 / 1048576.0 * 10.0).round() / 10.0,
            "messages": f.messages, "batches": f.batches, "quarantined": f.quarantined,
            "busy_ms": f.busy_ms, "decode_ms": f.decode_ms, "transform_ms": f.transform_ms,
            "database_ms": f.database_ms,
            "database_split_ms": {"begin": f.begin_ms, "load": f.load_ms, "ledger": f.ledger_ms, "daily": f.daily_ms, "regional": f.regional_ms, "program_and_quarantine": f.program_ms},
            "compactions": f.compactions, "compacted_deltas": f.compacted_deltas,
            "compaction_ms": f.compaction_ms, "settled_ms": f.settled_ms,
            "backpressure_ms": f.backpressure_ms,
            "freshness_p50_ms": f.freshness_p50_ms,
            "freshness_p99_ms": f.freshness_p99_ms, "freshness_max_ms": f.freshness_max_ms,
        })
    }
}

/// Waits for the processes, sampling each one's peak RSS (VmHWM) while it
/// runs and passing its errors on; then reads the figures each one wrote.
pub(super) fn watch(processes: Vec<Process>, limit: Option<Duration>) -> anyhow::Result<Vec<Run>> {
    let deadline = Instant::now() + limit.unwrap_or(Duration::from_secs(3600));
    let mut handles = Vec::new();
    for mut p in processes {
        let stderr = p.child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if serde_json::from_str::<Value>(&line).is_ok_and(|v| v["level"] == "ERROR") {
                    eprintln!("{line}");
                }
            }
        });
        handles.push((p, errors));
    }
    let mut peaks = vec![0u64; handles.len()];
    let mut done = vec![None; handles.len()];
    while done.iter().any(Option::is_none) {
        for (i, (p, _)) in handles.iter_mut().enumerate() {
            if done[i].is_some() {
                continue;
            }
            peaks[i] = peaks[i].max(vm_hwm(p.child.id()).unwrap_or(0));
            if let Some(status) = p.child.try_wait()? {
                done[i] = Some(status);
            }
        }
        if Instant::now() > deadline {
            bail!("the pipeline did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (processes, readers): (Vec<Process>, Vec<_>) = handles.into_iter().unzip();
    for r in readers {
        let _ = r.join();
    }
    let mut runs = Vec::new();
    for (i, p) in processes.iter().enumerate() {
        let status = done[i].expect("all done");
        if !status.success() {
            bail!("a pipeline process failed: {status}");
        }
        let text = std::fs::read(&p.report)
            .with_context(|| format!("reading the pipeline's figures {}", p.report.display()))?;
        runs.push(Run {
            peak_rss_bytes: peaks[i],
            figures: serde_json::from_slice(&text).context("the pipeline's figures")?,
        });
    }
    Ok(runs)
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
