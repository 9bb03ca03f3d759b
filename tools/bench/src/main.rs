//! `wasmbed-bench`: the Wasmbed benchmark harness (issue 7). It starts what it needs (simulated
//! boards, gateways, the QEMU board), measures, prints a table, writes the raw figures to
//! `docs/bench/results.json` and draws the charts in `docs/bench/`. See docs/benchmarks.md.

mod chart;
mod link;
mod suites;
mod util;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use serde_json::{json, Map, Value};

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "wasmbed-bench",
    about = "Wasmbed benchmark harness (docs/benchmarks.md)"
)]
struct Cli {
    /// What to run: all, latency, host, cpu, upload, contention, fanout, exec, nagle, baud,
    /// instant, fleet (several separated by commas).
    #[arg(default_value = "all")]
    what: String,
    /// Small counts and sizes: a smoke check well under a minute.
    #[arg(long)]
    quick: bool,
    /// Where results.json and the charts go (default: docs/bench of the repository; --quick
    /// defaults to $TMPDIR/wasmbed-bench/quick so a smoke run never overwrites the figures).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the QEMU board in `exec`.
    #[arg(long)]
    no_qemu: bool,
    /// `fleet`: the board counts to run, across 4 gateways (default 10,100; --quick 8; 1000
    /// takes minutes on 2 cores).
    #[arg(long, value_delimiter = ',')]
    fleet_boards: Option<Vec<usize>>,
    /// `fleet`: NATS servers: 1 (default), or a JetStream cluster of N on loopback with
    /// N-replica buckets.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    fleet_nats: Option<u8>,
}

/// The settings every suite reads.
pub struct Cfg {
    /// Small counts.
    pub quick: bool,
    /// Skip QEMU.
    pub no_qemu: bool,
    /// Output directory.
    pub out: PathBuf,
    /// `fleet`: board counts.
    pub fleet_boards: Vec<usize>,
    /// `fleet`: NATS servers.
    pub fleet_nats: usize,
}

/// One line of the summary table.
pub struct Row {
    /// Issue 7 item number and what is measured.
    pub what: String,
    /// The figure.
    pub value: String,
    /// The target (empty if none).
    pub target: String,
    /// Met, missed or not applicable.
    pub met: Option<bool>,
}

/// Results collected by the suites.
#[derive(Default)]
pub struct Report {
    /// Raw figures per suite.
    pub json: Map<String, Value>,
    /// Summary rows.
    pub rows: Vec<Row>,
}

impl Report {
    /// Adds a summary row.
    pub fn row(&mut self, what: &str, value: String, target: &str, met: Option<bool>) {
        println!(
            "  {what}: {value}{}",
            match met {
                Some(true) => "  [target met]",
                Some(false) => "  [TARGET MISSED]",
                None => "",
            }
        );
        self.rows.push(Row {
            what: what.into(),
            value,
            target: target.into(),
            met,
        });
    }
}

fn main() {
    let cli = Cli::parse();
    util::raise_nofile();
    let out = cli.out.clone().unwrap_or_else(|| {
        if cli.quick {
            util::log_dir().join("quick")
        } else {
            util::repo_root().join("docs/bench")
        }
    });
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("wasmbed-bench: cannot create {}: {e}", out.display());
        std::process::exit(1);
    }
    let cfg = Cfg {
        quick: cli.quick,
        no_qemu: cli.no_qemu,
        out,
        fleet_boards: cli.fleet_boards.clone().unwrap_or(if cli.quick {
            vec![8]
        } else {
            vec![10, 100]
        }),
        fleet_nats: cli.fleet_nats.map_or(1, usize::from),
    };
    let all = [
        "latency",
        "host",
        "cpu",
        "upload",
        "contention",
        "fanout",
        "exec",
        "nagle",
        "baud",
        "instant",
        "fleet",
    ];
    let wanted: Vec<&str> = if cli.what == "all" {
        all.to_vec()
    } else {
        cli.what.split(',').map(str::trim).collect()
    };
    let mut rep = Report::default();
    let t0 = Instant::now();
    let mut failed = Vec::new();
    for w in &wanted {
        println!("== {w}");
        let ts = Instant::now();
        let r = match *w {
            "latency" => suites::latency(&cfg, &mut rep),
            "host" => suites::host_wall(&cfg, &mut rep),
            "cpu" => suites::cpu(&cfg, &mut rep),
            "upload" => suites::upload(&cfg, &mut rep),
            "contention" => suites::contention(&cfg, &mut rep),
            "fanout" => suites::fanout(&cfg, &mut rep),
            "exec" => suites::exec(&cfg, &mut rep),
            "nagle" => suites::nagle(&cfg, &mut rep),
            "baud" => suites::baud(&cfg, &mut rep),
            "instant" => suites::instant(&cfg, &mut rep),
            "fleet" => suites::fleet(&cfg, &mut rep),
            other => Err(util::err(format!(
                "unknown suite `{other}` (one of {all:?})"
            ))),
        };
        if let Err(e) = r {
            eprintln!("wasmbed-bench: {w} failed: {e}");
            rep.json.insert(format!("{w}_error"), json!(e.to_string()));
            failed.push(w.to_string());
        }
        println!("   ({:.1} s)", ts.elapsed().as_secs_f64());
    }
    rep.json.insert(
        "run".into(),
        json!({"machine": util::machine(), "quick": cfg.quick, "suites": wanted,
               "wall_s": util::r3(t0.elapsed().as_secs_f64()),
               "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())}),
    );
    print_table(&rep);
    let path = cfg.out.join("results.json");
    let text = serde_json::to_string_pretty(&Value::Object(rep.json.clone())).expect("json");
    if let Err(e) = std::fs::write(&path, text + "\n") {
        eprintln!("wasmbed-bench: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
    println!("raw figures: {}", path.display());
    match chart::draw_all(&rep.json, &cfg.out) {
        Ok(files) => {
            for f in files {
                println!("chart: {}", f.display());
            }
        }
        Err(e) => {
            eprintln!("wasmbed-bench: charts failed: {e}");
            failed.push("charts".into());
        }
    }
    if !failed.is_empty() {
        eprintln!("wasmbed-bench: failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}

fn print_table(rep: &Report) {
    let w0 = rep
        .rows
        .iter()
        .map(|r| r.what.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let w1 = rep
        .rows
        .iter()
        .map(|r| r.value.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let w2 = rep
        .rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!();
    println!("{:w0$}  {:w1$}  {:w2$}  MET", "WHAT", "VALUE", "TARGET");
    for r in &rep.rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!("{:w0$}  {:w1$}  {:w2$}  {met}", r.what, r.value, r.target);
    }
}
